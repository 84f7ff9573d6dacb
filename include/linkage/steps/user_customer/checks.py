"""Validation of the user-customer relation: one walk per side of the pair, written once for a `Side`."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from itertools import chain
from typing import Any

from pymongo.database import Database

from linkage.app_schema import UNSET_VALUES, USERS
from linkage.lookups import DENSE_PER_KEY, by_keys
from linkage.models import Category, Ref
from linkage.steps.user_customer.sides import LINKS_DISAGREE, SIDES, Side
from linkage.validation.checks import Finding, LinkCounts, link_value, link_walk


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


def side_findings(db: Database, side: Side, linked: LinkCounts) -> Iterator[list[Finding]]:
    """Per document of the side holding a link: a value shared with another document (duplicate), a value
    naming nothing (dangling), a target that does not name it back (disagree)."""
    projection = {"id": 1, side.field: 1, **dict.fromkeys(side.relation.scope, 1)}
    for chunk in link_walk(db, side.source, side.field, projection):
        linked[side.relation.name] += sum(side.relation.in_scope(d) for d in chunk)
        groups = _grouped(chunk, side.field)
        targets = {t["id"]: t for t in by_keys(db[side.target], "id", groups, {"id": 1, side.back: 1},
                                                range_limit=DENSE_PER_KEY * len(groups))}
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
        yield findings


def pair_findings(db: Database, linked: LinkCounts) -> Iterator[list[Finding]]:
    """Both sides of the pair, each walked in the order of its own link field."""
    return chain.from_iterable(side_findings(db, side, linked) for side in SIDES)
