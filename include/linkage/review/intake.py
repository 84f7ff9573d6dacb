"""Recording what people decide about review items: every decision checked, then all of them written, or none.

A decision names an item and says one of: a candidate's id or another existing document's id
(link to it), `none` (leave it unlinked), `clear` (a dangling link: unset it). Before anything is
written every decision is checked against the item and its document as they are now: the item
exists and is not resolved, the document still exists, `clear` is for a dangling link that still
names nothing, and a link names a document that exists (once) and keeps every rule of the step's
relation but the ambiguity a person resolved (`Subject.check`: uniqueness, both sides agreeing,
the same customer). One bad decision refuses them all, each refusal with its line and reason:
an import is all or nothing. The view, its JSON API, the CSV import and `linkage decide` all
come through `record_decisions`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from linkage.core.csvsafe import MalformedCsv, read_rows
from linkage.core.errors import LinkageError
from linkage.core.keys import id_key
from linkage.core.mask import redact
from linkage.core.models import Category
from linkage.core.normalize import is_unset
from linkage.mongo.lookups import by_keys
from linkage.relations import REGISTRY, Subject
from linkage.store.decisions import DecisionKind, DecisionRecord, new_decision_id
from linkage.store.review_queue import DECIDED, RESOLVED

if TYPE_CHECKING:
    from linkage.run.session import Linkage

#: What one request may ask for at most: decisions at once, a note's and a decision's length.
MAX_DECISIONS = 20_000
MAX_NOTE = 500
MAX_DECISION = 200
WORDS = {DecisionKind.NONE.value: DecisionKind.NONE, DecisionKind.CLEAR.value: DecisionKind.CLEAR}
COLUMNS = ("item_id", "decision")
CHUNK = 1000


class DecisionInput(BaseModel):
    """One decision as a person gave it; `line` is where (the CSV's line, or the position in a request)."""

    line: int
    item_id: str
    decision: str
    note: str | None = None


class Refusal(BaseModel):
    line: int
    item_id: str | None = None
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


class DecisionsRefused(LinkageError):
    """Nothing was recorded: every refused decision, with its line and why."""

    def __init__(self, refusals: list[Refusal]) -> None:
        self.refusals = sorted(refusals, key=lambda r: r.line)
        super().__init__(f"nothing recorded: {len(self.refusals)} refused ({'; '.join(map(str, self.refusals[:5]))}"
                         f"{'; ...' if len(self.refusals) > 5 else ''})")


class Recorded(BaseModel):
    """What was recorded: how many decisions of each kind, their ids, the batch they came in."""

    batch: str
    decided: int
    by_kind: dict[str, int]
    decisions: list[str]
    #: Rows of an import that repeat their decided item's decision: nothing new, left out.
    unchanged: int = 0


@dataclass(frozen=True)
class _Choice:
    """A decision understood against its item: what it asks for, on which document."""

    given: DecisionInput
    item: dict[str, Any]
    doc: dict[str, Any]
    subject: Subject
    kind: DecisionKind
    target: str | None = None

    def refused(self, reason: str) -> Refusal:
        return Refusal(line=self.given.line, item_id=redact(self.given.item_id), reason=reason)


def _basic(given: DecisionInput, seen: dict[str, int]) -> str | None:
    if not given.item_id.strip():
        return "no item_id"
    if not given.decision.strip():
        return "no decision: give a candidate's id, another id, none or clear"
    if len(given.decision) > MAX_DECISION:
        return f"the decision is longer than {MAX_DECISION} characters"
    if given.note and len(given.note) > MAX_NOTE:
        return f"the note is longer than {MAX_NOTE} characters"
    item_id = given.item_id.strip()
    if item_id in seen:
        return f"duplicate: item {redact(item_id)} is decided on line {seen[item_id]} already"
    seen[item_id] = given.line
    return None


def _understood(given: DecisionInput, item: dict[str, Any] | None, docs: dict[str, dict[str, Any]]) -> _Choice | str:
    """What a decision asks for on its item's document, or why it cannot be taken."""
    if item is None:
        return f"unknown item {redact(given.item_id)}"
    if item["status"] == RESOLVED:
        return "the item is resolved: its document no longer needs a decision"
    subject = REGISTRY.subject(item["step"], item["collection"])
    doc = docs.get(id_key(item["document_oid"]))
    if subject is None:
        return f"step {item['step']} takes no decisions on {item['collection']} documents"
    if doc is None:
        return "the item's document no longer exists"
    text = given.decision.strip()
    kind = WORDS.get(text.lower(), DecisionKind.LINK)
    dangling = item["category"] == Category.DANGLING.value
    if kind == DecisionKind.CLEAR and (not dangling or is_unset(doc.get(subject.link))):
        return f"clear is for a dangling link; this item is {item['category']}"
    if kind == DecisionKind.LINK and not is_unset(doc.get(subject.link)) and not dangling:
        return f"{subject.link} is set already: only a dangling link is replaced"
    return _Choice(given=given, item=item, doc=doc, subject=subject, kind=kind,
                   target=text if kind == DecisionKind.LINK else doc.get(subject.link))


def _linkable(lk: Linkage, subject: Subject, choices: list[_Choice]) -> list[Refusal]:
    """The links and clears on `subject`'s documents that cannot be recorded, and why."""
    named = Counter(str(d["id"]) for d in by_keys(lk.db[subject.target], "id", {str(c.target) for c in choices},
                                                  {"id": 1}, range_limit=None))
    refusals, links = [], []
    for c in choices:
        candidates = {cand["id"] for cand in c.item.get("candidates") or []}
        found = named[str(c.target)]
        if c.kind == DecisionKind.CLEAR and found:
            refusals.append(c.refused(f"{subject.link} names an existing document now: there is nothing to clear"))
        elif c.kind == DecisionKind.LINK and not found:
            refusals.append(c.refused(f"{redact(str(c.target))!r} is neither a candidate of this item nor the id of an "
                                      f"existing {subject.target} document" if c.target not in candidates else
                                      f"candidate {c.target} no longer exists"))
        elif c.kind == DecisionKind.LINK and found > 1:
            refusals.append(c.refused(f"several {subject.target} documents have id {c.target}"))
        elif c.kind == DecisionKind.LINK:
            links.append(c)
    problems = subject.check(lk.db, [(c.doc, str(c.target)) for c in links]) if links else []
    return refusals + [c.refused(f"linking to {c.target} would break a rule: {problem}")
                       for c, problem in zip(links, problems, strict=True) if problem]


def _understand_all(lk: Linkage, given: Sequence[DecisionInput]) -> tuple[list[_Choice], list[Refusal]]:
    """Every decision checked against its item and document as they are now."""
    refusals: list[Refusal] = []
    seen: dict[str, int] = {}
    fine = []
    for g in given:
        problem = _basic(g, seen)
        if problem:
            refusals.append(Refusal(line=g.line, item_id=redact(g.item_id) or None, reason=problem))
        else:
            fine.append(g)
    items: dict[str, dict[str, Any]] = {}
    for start in range(0, len(fine), CHUNK):
        items.update(lk.reviews.find([g.item_id.strip() for g in fine[start:start + CHUNK]]))
    oids: dict[str, list[Any]] = {}
    for item in items.values():
        oids.setdefault(item["collection"], []).append(item["document_oid"])
    docs = {key: doc for name, ids in oids.items() for key, doc in lk.states.documents(name, ids).items()}
    choices = []
    for g in fine:
        understood = _understood(g, items.get(g.item_id.strip()), docs)
        if isinstance(understood, str):
            refusals.append(Refusal(line=g.line, item_id=redact(g.item_id), reason=understood))
        else:
            choices.append(understood)
    return choices, refusals


def _record(choice: _Choice, lk: Linkage, *, by: str, via: str, batch: str, at: datetime) -> DecisionRecord:
    """The decision as stored; its note is free text a person typed, masked like every other (CONTRACT §5)."""
    item, decision_id = choice.item, new_decision_id(at)
    candidates = {c["id"] for c in item.get("candidates") or []}
    return DecisionRecord(
        _id=decision_id, item_id=item["_id"], step=item["step"], collection=item["collection"],
        document_oid=item["document_oid"], document_id=item.get("document_id"), category=item["category"],
        kind=choice.kind, target=choice.target if choice.kind != DecisionKind.NONE else None,
        candidate=choice.target in candidates, by=by, via=via, at=at,
        note=redact((choice.given.note or "").strip()) or None, batch=batch,
        state=lk.states.state(item["collection"], choice.doc, decision_id))


def record_decisions(lk: Linkage, given: Sequence[DecisionInput], *, by: str, via: str,
                     refused: Sequence[Refusal] = ()) -> Recorded:
    """Check every decision, then record them all (history first, then their items closed), or refuse them all
    (with `refused`, what was found wrong before: malformed rows)."""
    if len(given) > MAX_DECISIONS:
        raise DecisionsRefused([Refusal(line=0, reason=f"{len(given)} decisions: at most {MAX_DECISIONS} at once")])
    choices, refusals = _understand_all(lk, given)
    refusals += refused
    by_subject: dict[tuple[str, str], list[_Choice]] = {}
    for c in choices:
        if c.kind != DecisionKind.NONE:
            by_subject.setdefault((c.item["step"], c.item["collection"]), []).append(c)
    for group in by_subject.values():
        refusals += _linkable(lk, group[0].subject, group)
    if refusals or not choices:
        raise DecisionsRefused(refusals or [Refusal(line=0, reason="no decision to record")])
    at = datetime.now(timezone.utc)
    batch = new_decision_id(at).replace("d-", "batch-", 1)
    records = [_record(c, lk, by=by, via=via, batch=batch, at=at) for c in choices]
    lk.decisions.add(records)
    lk.reviews.decided(records)
    return Recorded(batch=batch, decided=len(records), by_kind=dict(Counter(r.kind.value for r in records)),
                    decisions=[r.id for r in records])


def csv_inputs(text: str) -> Iterable[DecisionInput | Refusal]:
    """The decisions of an exported CSV a person filled in (rows with an empty `decision` are left out)."""
    try:
        for row in read_rows(text, COLUMNS):
            if row.problem:
                yield Refusal(line=row.line, reason=row.problem)
            elif row.cells["decision"].strip():
                yield DecisionInput(line=row.line, item_id=row.cells["item_id"].strip(),
                                    decision=row.cells["decision"], note=row.cells.get("note") or None)
    except MalformedCsv as exc:
        yield Refusal(line=exc.line, reason=exc.reason)


def _as_decided(item: dict[str, Any] | None) -> str | None:
    """A decided item's decision as the export's `decision` column says it (`ReviewRow.decided_as`)."""
    d = (item or {}).get("decision") if (item or {}).get("status") == DECIDED else None
    return None if not d else (d.get("target") or "") if d["kind"] == DecisionKind.LINK.value else d["kind"]


def _changed(lk: Linkage, given: list[DecisionInput]) -> tuple[list[DecisionInput], int]:
    """The decisions that say something new, and how many repeat their decided item's decision (an exported
    decided row read back as it was: nothing to record)."""
    items: dict[str, dict[str, Any]] = {}
    for start in range(0, len(given), CHUNK):
        items.update(lk.reviews.find([g.item_id for g in given[start:start + CHUNK]]))
    new = [g for g in given if _as_decided(items.get(g.item_id)) != g.decision.strip()]
    return new, len(given) - len(new)


def import_csv(lk: Linkage, text: str, *, by: str, via: str) -> Recorded:
    """Record the decisions of a filled-in export, all of them or none (a malformed row refuses the import). A
    row that says what its decided item was decided already (an export of decided items) is left out."""
    read = list(csv_inputs(text))
    refused = [r for r in read if isinstance(r, Refusal)]
    given, unchanged = _changed(lk, [g for g in read if isinstance(g, DecisionInput)])
    if unchanged and not given and not refused:
        return Recorded(batch="", decided=0, by_kind={}, decisions=[], unchanged=unchanged)
    recorded = record_decisions(lk, given, by=by, via=via, refused=refused)
    return recorded.model_copy(update={"unchanged": unchanged})
