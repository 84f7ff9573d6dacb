"""What a person's decision on a user-customer review item may write, written once for a `Side`.

A decided link sets both sides of a pair, so beyond the ambiguity the person resolved it must keep
every other rule of CONTRACT §3 and §6: the target's side is unset or already names this document
(both sides agree), no other document of this side names the target, and no other document of the
target's side names this one (uniqueness).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from pymongo.database import Database

from linkage.core.normalize import is_key, is_unset
from linkage.mongo.lookups import by_keys
from linkage.relations.base import LinkCheck, Subject
from linkage.relations.user_customer.sides import CUSTOMER_SIDE, USER_SIDE, Side


def _problem(side: Side, doc: Mapping[str, Any], target: str, back: Any, same_side: int, naming: int) -> str | None:
    if not is_key(doc.get("id")):
        return f"id: this document has no usable id for {side.target}.{side.back} to name"
    if not is_unset(back) and back != doc["id"]:
        return f"{side.back}: that document already names another"
    if same_side:
        return f"{side.field}: another document already names that one"
    if naming:
        return f"{side.back}: another {side.target} document already names this one"
    return None


def _grouped(docs: Sequence[Mapping[str, Any]], field: str, member: str) -> dict[Any, set[Any]]:
    groups: dict[Any, set[Any]] = defaultdict(set)
    for d in docs:
        groups[d[field]].add(d.get(member))
    return groups


def pair_check(side: Side) -> LinkCheck:
    """The rules a link decided on `side`'s documents must keep, checked for a batch of decisions at once."""

    def check(db: Database, pairs: Sequence[tuple[Mapping[str, Any], str]]) -> list[str | None]:
        targets = {t for _, t in pairs}
        backs = {t["id"]: t.get(side.back) for t in by_keys(db[side.target], "id", targets, {side.back: 1},
                                                             range_limit=None)}
        naming_target = _grouped(by_keys(db[side.source], side.field, targets, {"_id": 1}, range_limit=None),
                                 side.field, "_id")
        naming_doc = _grouped(by_keys(db[side.target], side.back, {doc.get("id") for doc, _ in pairs}, {"id": 1},
                                      range_limit=None), side.back, "id")
        return [_problem(side, doc, target, backs.get(target), len(naming_target.get(target, set()) - {doc["_id"]}),
                         len(naming_doc.get(doc.get("id"), set()) - {target})) for doc, target in pairs]

    return check


SUBJECTS = tuple(Subject(collection=side.source, link=side.field, target=side.target, keys=("phone", "email"),
                         check=pair_check(side), back=side.back) for side in (USER_SIDE, CUSTOMER_SIDE))
