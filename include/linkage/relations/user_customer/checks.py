"""Validation of the user-customer relation: one walk per side of the pair, written once for a `Side`."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from itertools import chain
from typing import Any

from pymongo.database import Database

from linkage.core.app_schema import UNSET_VALUES, USERS
from linkage.core.models import Category, Ref
from linkage.mongo.lookups import DENSE_PER_KEY, by_keys
from linkage.relations.checks import Finding, LinkCounts, link_value, link_walk
from linkage.relations.user_customer.sides import LINKS_DISAGREE, SIDES, Side


def _grouped(chunk: list[dict[str, Any]], field: str) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for doc in chunk:
        groups[doc[field]].append(doc)
    return groups


def _disagreement(side: Side, doc: dict[str, Any], named: dict[str, Any]) -> Finding:
    """A document whose target names another (a conflict), or nobody (one-sided, reported on the user, as the
    linking rules do)."""
    own, theirs = link_value(side.source, doc, side.field), link_value(side.target, named, side.back)
    if named.get(side.back) in UNSET_VALUES:
        user, user_coll = (doc, side.source) if side.source == USERS else (named, side.target)
        other, other_coll = (named, side.target) if side.source == USERS else (doc, side.source)
        return Finding(LINKS_DISAGREE, user_coll, user["_id"], user.get("id"), (own,), Category.ONE_SIDED,
                       f"{side.back}: unset on the other side of the pair", _held_by(other_coll, other.get("id")))
    return Finding(LINKS_DISAGREE, side.source, doc["_id"], doc.get("id"), (own, theirs), Category.CONFLICT,
                   f"{side.field}: names a document that names another", _held_by(side.source, named.get(side.back)))


def _held_by(collection: str, *ids: Any) -> tuple[Ref, ...]:
    """The documents holding the other side, by their usable ids."""
    return tuple(Ref(collection=collection, id=i) for i in ids if isinstance(i, str) and i)


def _problems(groups: dict[str, list[dict[str, Any]]], targets: dict[str, dict[str, Any]], side: Side) -> set[str]:
    """The link values of the groups that break a rule: shared, naming nothing, or not named back."""
    return {value for value, docs in groups.items()
            if len(docs) > 1 or value not in targets or targets[value].get(side.back) != docs[0].get("id")}


def _findings(side: Side, groups: dict[str, list[dict[str, Any]]], targets: dict[str, dict[str, Any]]) -> list[Finding]:
    """Per document of these groups: a value shared with another document (duplicate), a value naming nothing
    (dangling), a target that does not name it back (disagree)."""
    findings: list[Finding] = []
    for value, docs in groups.items():
        if len(docs) > 1:
            shared = tuple(link_value(side.source, d, side.field) for d in docs)
            findings += [Finding(side.duplicates, side.source, d["_id"], d.get("id"), shared, Category.CONFLICT,
                                 f"{side.field}: another document holds the same value",
                                 _held_by(side.source, *(o.get("id") for o in docs if o is not d)))
                         for d in docs]
            continue
        doc, named = docs[0], targets.get(value)
        if named is None:
            findings.append(Finding(side.dangling, side.source, doc["_id"], doc.get("id"),
                                    (link_value(side.source, doc, side.field),), Category.DANGLING,
                                    f"{side.field}: names no existing document"))
        elif named.get(side.back) != doc.get("id"):
            findings.append(_disagreement(side, doc, named))
    return findings


def _joined(db: Database, side: Side, docs: list[dict[str, Any]], projection: dict[str, int],
            ) -> tuple[dict[str, list[dict[str, Any]]], dict[str, dict[str, Any]]]:
    """These documents of the side by their link value, and the targets those values name."""
    groups = _grouped(docs, side.field)
    targets = {t["id"]: t for t in by_keys(db[side.target], "id", groups, projection,
                                            range_limit=DENSE_PER_KEY * len(groups))}
    return groups, targets


def side_findings(db: Database, side: Side, linked: LinkCounts) -> Iterator[list[Finding]]:
    """The rules of one side, a chunk of its walk at a time.

    The walk and its join read the link values alone (no `_id`, a narrower read); only the groups that
    break a rule are read again, whole enough to be reported (drift: few)."""
    narrow = {"_id": 0, "id": 1, side.field: 1, **dict.fromkeys(side.relation.scope, 1)}
    for chunk in link_walk(db, side.source, side.field, narrow):
        linked[side.relation.name] += sum(side.relation.in_scope(d) for d in chunk)
        problems = _problems(*_joined(db, side, chunk, {"_id": 0, "id": 1, side.back: 1}), side)
        if problems:
            docs = by_keys(db[side.source], side.field, problems, {"id": 1, side.field: 1}, range_limit=len(chunk))
            groups, targets = _joined(db, side, docs, {"id": 1, side.back: 1})
            yield _findings(side, {v: d for v, d in groups.items() if v in problems}, targets)


def pair_findings(db: Database, linked: LinkCounts) -> Iterator[list[Finding]]:
    """Both sides of the pair, each walked in the order of its own link field."""
    return chain.from_iterable(side_findings(db, side, linked) for side in SIDES)
