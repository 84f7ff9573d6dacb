"""What validation measures, computed by MongoDB in bounded memory, and whose doing each violation is.

Each check walks the documents holding a link in the order of that link, so
that every document sharing a value sits in one chunk (duplicates are found
without a `$group`) and the documents they name are one index range (see
`linkage.lookups`). Memory holds one chunk whatever the collection size.

Every violation found is a `Finding` naming the link values that make it fail.
A finding is the run's when one of those values is a link this run wrote and
that is still in place (the journal says so); otherwise it is drift: present
before the run, or made by the app while it ran. Without a run (`linkage
validate`) every finding counts.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from itertools import chain
from pathlib import Path
from typing import Any, NamedTuple

from pydantic import BaseModel, Field
from pymongo.database import Database

from linkage import backup
from linkage.app_schema import (
    CUSTOMER_LINK,
    CUSTOMERS,
    DELIVERIES,
    LINK_DOMAIN,
    ORDER_LINK,
    ORDERS,
    UNSET_VALUES,
    USER_LINK,
    USERS,
)
from linkage.coverage import ORDER_RELATION, RELATIONS, USER_RELATION, link_coverage
from linkage.engine import not_by_string, pages
from linkage.journal import LinkValue
from linkage.journal_codec import id_key
from linkage.lookups import DENSE_PER_KEY, by_keys
from linkage.models import Category, Decision, Step
from linkage.validation.rules import RULES

CHUNK = 5000
EXAMPLES = 5


class Finding(NamedTuple):
    """One document breaking one expectation, and the link values that break it."""

    rule: str
    step: Step
    collection: str
    oid: Any
    app_id: Any
    values: tuple[LinkValue, ...]
    category: Category
    reason: str

    @property
    def example(self) -> str:
        return f"{self.collection} _id={self.oid}"

    def decision(self) -> Decision:
        """As a review item: the document, its category and why (never a value)."""
        return Decision(oid=self.oid, app_id=self.app_id, category=self.category, reason=self.reason,
                        collection=self.collection)


#: Which of these link values the run wrote (and still holds); None: no run, every finding counts.
Attribution = Callable[[list[LinkValue]], set[LinkValue]] | None
#: Receives the drift found, a chunk at a time (review items in a real run).
DriftSink = Callable[[list[Finding]], None]


class Measured(BaseModel):
    """An observation: the run's violations (or a ratio), the drift beside it, ids as examples."""

    value: float | None
    examples: list[str] = Field(default_factory=list)
    drift: int = 0
    drift_examples: list[str] = Field(default_factory=list)
    note: str | None = None


class Measurement(NamedTuple):
    """What validation measured: an observation per rule, and the link coverage it counted on the way."""

    measured: dict[str, Measured]
    coverage: dict[str, dict[str, float]]


class Tallies:
    """Counts per rule, split into the run's violations and drift; and the links each walk saw."""

    def __init__(self, attribute: Attribution, on_drift: DriftSink) -> None:
        self.attribute, self.on_drift = attribute, on_drift
        self.measured: dict[str, Measured] = {}
        self.linked: Counter[str] = Counter()

    def add(self, findings: list[Finding]) -> None:
        ours = self.attribute([v for f in findings for v in f.values]) if self.attribute and findings else None
        drift = []
        for finding in findings:
            m = self.measured.setdefault(finding.rule, Measured(value=0))
            if ours is None or any(v in ours for v in finding.values):
                m.value = (m.value or 0) + 1
                if len(m.examples) < EXAMPLES:
                    m.examples.append(finding.example)
            else:
                m.drift += 1
                if len(m.drift_examples) < EXAMPLES:
                    m.drift_examples.append(finding.example)
                drift.append(finding)
        if drift:
            self.on_drift(drift)


def _value(coll: str, doc: dict[str, Any], field: str) -> LinkValue:
    return LinkValue(coll, doc["_id"], field, doc.get(field))


def _walk(db: Database, source: str, field: str, projection: dict[str, int]) -> Iterator[list[dict[str, Any]]]:
    """The documents holding a link in `field`, in its order, a chunk at a time (every document sharing a
    value in one chunk)."""
    cursor = db[source].find({field: LINK_DOMAIN}, projection).sort(field, 1).batch_size(CHUNK)
    return pages(cursor, CHUNK, field)


def order_findings(db: Database, linked: Counter[str]) -> Iterator[list[Finding]]:
    """Every set `order_id` is one string naming an existing order."""
    for chunk in _walk(db, DELIVERIES, ORDER_LINK, {"id": 1, ORDER_LINK: 1}):
        linked[ORDER_RELATION] += len(chunk)
        named = {d[ORDER_LINK] for d in chunk}
        existing = {o["id"] for o in by_keys(db[ORDERS], "id", named, {"id": 1},
                                             range_limit=DENSE_PER_KEY * len(named))}
        yield [Finding("order_refs_dangling", Step.ORDER_DELIVERY, DELIVERIES, d["_id"], d.get("id"),
                       (_value(DELIVERIES, d, ORDER_LINK),), Category.DANGLING, "order_id: names no existing order")
               for d in chunk if d[ORDER_LINK] not in existing]
    not_single = {"$and": [{ORDER_LINK: {"$nin": UNSET_VALUES}}, not_by_string(ORDER_LINK)]}
    for chunk in pages(db[DELIVERIES].find(not_single, {"id": 1}).batch_size(CHUNK), CHUNK):
        yield [Finding("order_links_not_single", Step.ORDER_DELIVERY, DELIVERIES, d["_id"], d.get("id"), (),
                       Category.INVALID, "order_id: not a single string") for d in chunk]


def _grouped(chunk: list[dict[str, Any]], field: str) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for doc in chunk:
        groups[doc[field]].append(doc)
    return groups


def _pair_findings(db: Database, source: str, field: str, target: str, back: str,
                   linked: Counter[str]) -> Iterator[list[Finding]]:
    """Documents of `source` linking to `target` through `field`; `back` is the target's field naming them.

    Reports, per document: a value shared with another document (duplicate), a
    value naming nothing (dangling), a target that does not name it back
    (disagree: one-sided when the target's side is unset).
    """
    side = "user" if source == USERS else "customer"
    relation = next(r for r in RELATIONS if r.collection == source)
    for chunk in _walk(db, source, field, {"id": 1, field: 1, **dict.fromkeys(relation.scope, 1)}):
        linked[relation.name] += sum(all(d.get(k) == v for k, v in relation.scope.items()) for d in chunk)
        groups = _grouped(chunk, field)
        targets = {t["id"]: t for t in by_keys(db[target], "id", groups, {"id": 1, back: 1},
                                                range_limit=DENSE_PER_KEY * len(groups))}
        findings: list[Finding] = []
        for value, docs in groups.items():
            if len(docs) > 1:
                shared = tuple(_value(source, d, field) for d in docs)
                findings += [Finding(f"{side}_link_duplicates", Step.USER_CUSTOMER, source, d["_id"], d.get("id"),
                                     shared, Category.CONFLICT, f"{field}: another document holds the same value")
                             for d in docs]
                continue
            doc, named = docs[0], targets.get(value)
            own = _value(source, doc, field)
            if named is None:
                findings.append(Finding(f"{side}_refs_dangling", Step.USER_CUSTOMER, source, doc["_id"], doc.get("id"),
                                        (own,), Category.DANGLING, f"{field}: names no existing document"))
            elif named.get(back) != doc.get("id"):
                theirs = _value(target, named, back)
                if named.get(back) in UNSET_VALUES:  # one-sided: reported on the user, as the linking rules do
                    user, user_coll = (doc, source) if source == USERS else (named, target)
                    findings.append(Finding("links_disagree", Step.USER_CUSTOMER, user_coll, user["_id"],
                                            user.get("id"), (own,), Category.ONE_SIDED,
                                            f"{back}: unset on the other side of the pair"))
                else:
                    findings.append(Finding("links_disagree", Step.USER_CUSTOMER, source, doc["_id"], doc.get("id"),
                                            (own, theirs), Category.CONFLICT,
                                            f"{field}: names a document that names another"))
        yield findings


def lost_findings(db: Database, backup_path: str | None) -> Iterator[list[Finding]]:
    """Documents in the run's backup that no longer exist (documents the app inserts meanwhile are fine)."""
    if not backup_path:
        return
    root = Path(backup_path)
    manifest = backup.load_manifest(root)
    for name, entry in manifest.collections.items():
        ids = (backup.document_id(raw) for raw in backup.documents(root, entry, manifest.gzip))
        for chunk in pages(({"_id": oid} for oid in ids), CHUNK):
            wanted = [d["_id"] for d in chunk]
            present = {id_key(d["_id"]) for d in db[name].find({"_id": {"$in": wanted}}, {"_id": 1})}
            yield [Finding("documents_lost", Step.USER_CUSTOMER if name != DELIVERIES else Step.ORDER_DELIVERY,
                           name, oid, None, (), Category.DANGLING, "deleted since the run's backup")
                   for oid in wanted if id_key(oid) not in present]


def coverage(cov: dict[str, dict[str, float]]) -> dict[str, Measured]:
    def measured(relation: str) -> Measured:
        counts = cov[relation]
        return Measured(value=counts["ratio"], note=f"{counts['linked']:.0f}/{counts['total']:.0f}")
    return {"order_coverage": measured(ORDER_RELATION), "user_coverage": measured(USER_RELATION)}


def measure(db: Database, *, attribute: Attribution = None, on_drift: DriftSink = lambda findings: None,
            backup_path: str | None = None) -> Measurement:
    """Every observation the rules judge, with each violation attributed to the run or to drift.

    One walk per link field: the same walk counts the links for the coverage.
    """
    tallies = Tallies(attribute, on_drift)
    for findings in chain(order_findings(db, tallies.linked),
                          _pair_findings(db, USERS, USER_LINK, CUSTOMERS, CUSTOMER_LINK, tallies.linked),
                          _pair_findings(db, CUSTOMERS, CUSTOMER_LINK, USERS, USER_LINK, tallies.linked),
                          lost_findings(db, backup_path)):
        tallies.add(findings)
    measured = {rule.name: tallies.measured.get(rule.name, Measured(value=0)) for rule in RULES}
    covered = link_coverage(db, {r.name: tallies.linked[r.name] for r in RELATIONS})
    measured.update(coverage(covered))
    if not backup_path:
        measured["documents_lost"].note = "no backup for this run (a dry run or a plain validation): nothing to check"
    return Measurement(measured, covered)
