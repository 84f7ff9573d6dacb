"""What validation measures, computed by MongoDB in bounded memory, and whose doing each violation is.

The checks are the relations' own (`StepSpec.checks`, one walk each) plus the
run's: every document the run backed up still exists. Each violation found is
a `Finding` carrying its rule and the link values that make it fail. A finding
is the run's when one of those values is a link this run wrote and that is
still in place (the journal says so); otherwise it is drift: present before the
run, or made by the app while it ran. Without a run (`linkage validate`) every
finding counts.

Nothing is assumed: a finding for a rule its check does not measure is an
error, and a rule that no check measured is reported `unmeasured`, which fails
the run (`gate`).
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

from pydantic import BaseModel, Field
from pymongo.database import Database

from linkage.core.errors import LinkageError
from linkage.core.keys import id_key
from linkage.core.models import Category
from linkage.engine.coverage import Relation, link_coverage
from linkage.engine.passes import pages
from linkage.relations import REGISTRY
from linkage.relations.checks import CHUNK, Check, Finding, LinkCounts
from linkage.relations.rules import DOCUMENTS_LOST, Rule, RuleKind
from linkage.store import backup
from linkage.store.journal import LinkValue

EXAMPLES = 5
UNMEASURED = "no check measured this rule: it cannot be judged, so it fails"


#: Which of these link values the run wrote (and still holds); None: no run, every finding counts.
Attribution = Callable[[list[LinkValue]], set[LinkValue]] | None
#: Receives the drift found, a chunk at a time (review items in a real run).
#: Of the drift found, what still counts: a problem a person decided to leave is not drift any more.
Excuse = Callable[[list[Finding]], list[Finding]]


class Measured(BaseModel):
    """An observation: the run's violations (or a ratio), the drift beside it, ids as examples.

    `unmeasured`: no check measured the rule (its value means nothing; the rule fails).
    """

    value: float | None
    examples: list[str] = Field(default_factory=list)
    drift: int = 0
    drift_examples: list[str] = Field(default_factory=list)
    note: str | None = None
    unmeasured: bool = False
    #: A coverage of a relation with no documents: it fails unless the run allows empty collections.
    empty: bool = False


class RuleError(LinkageError):
    """A check reported a rule it does not measure: a mistake in the code, never a pass."""


class Measurement(NamedTuple):
    """What validation measured: an observation per rule, and the link coverage it counted on the way."""

    measured: dict[str, Measured]
    coverage: dict[str, dict[str, float]]


class Tallies:
    """Counts per rule, split into the run's violations and drift; the links each walk saw; what was measured."""

    def __init__(self, attribute: Attribution, excuse: Excuse) -> None:
        self.attribute, self.excuse = attribute, excuse
        self.measured: dict[Rule, Measured] = {}
        self.linked: LinkCounts = Counter()
        self.counted: set[Relation] = set()

    def add(self, check: Check, findings: list[Finding]) -> list[Finding]:
        """Count a check's findings; the drift among them (not the run's, not excused)."""
        for finding in findings:
            if finding.rule not in check.measures:
                raise RuleError(f"check {check.name} reported rule {finding.rule.name!r}, which it does not measure "
                                f"(it measures {', '.join(r.name for r in check.measures)})")
        ours = self.attribute([v for f in findings for v in f.values]) if self.attribute and findings else None
        drift = []
        for finding in findings:
            m = self.measured.setdefault(finding.rule, Measured(value=0))
            if ours is None or any(v in ours for v in finding.values):
                m.value = (m.value or 0) + 1
                if len(m.examples) < EXAMPLES:
                    m.examples.append(finding.example)
            else:
                drift.append(finding)
        drift = self.excuse(drift) if drift else drift
        for finding in drift:
            m = self.measured[finding.rule]
            m.drift += 1
            if len(m.drift_examples) < EXAMPLES:
                m.drift_examples.append(finding.example)
        return drift

    def done(self, check: Check) -> None:
        """The check walked to its end: each of its rules is measured (0 where it found nothing)."""
        for rule in check.measures:
            self.measured.setdefault(rule, Measured(value=0))
        self.counted.update(check.counts)

    def result(self, rule: Rule, coverage: dict[str, dict[str, float]]) -> Measured:
        if rule.kind == RuleKind.COVERAGE:
            assert rule.relation is not None
            if rule.relation not in self.counted:
                return Measured(value=None, unmeasured=True, note=UNMEASURED)
            counts = coverage[rule.relation.name]
            if not counts["total"]:
                return Measured(value=None, empty=True, note=f"no documents ({rule.relation.counts or 'in scope'})")
            return Measured(value=counts["ratio"], note=f"{counts['linked']:.0f}/{counts['total']:.0f}")
        return self.measured.get(rule) or Measured(value=None, unmeasured=True, note=UNMEASURED)


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
            yield [Finding(DOCUMENTS_LOST, name, oid, None, (), Category.DANGLING, "deleted since the run's backup")
                   for oid in wanted if id_key(oid) not in present]


def lost_check(backup_path: str | None) -> Check:
    return Check("documents_lost", measures=(DOCUMENTS_LOST,), walk=lambda db, linked: lost_findings(db, backup_path))


class Measuring:
    """Every observation the rules judge, with each violation attributed to the run or to drift (unless a
    person decided to leave it: `excuse`).

    Iterated, it walks the checks (the registered steps' unless `checks` are given, and the run's backup), one
    walk per check counting the links for the coverage on its way, and yields each batch of drift as it is
    found; `result` is the measurement once the walk has ended. An iterator rather than a callback: the
    validation stage, which records the drift, drives the walk, and the walk never calls back up into it.
    """

    def __init__(self, db: Database, *, attribute: Attribution = None, excuse: Excuse = lambda findings: findings,
                 backup_path: str | None = None, checks: Sequence[Check] | None = None) -> None:
        self.db, self.backup_path = db, backup_path
        self.checks = [*(REGISTRY.checks() if checks is None else checks), lost_check(backup_path)]
        self.tallies = Tallies(attribute, excuse)
        self.result: Measurement | None = None

    def __iter__(self) -> Iterator[list[Finding]]:
        tallies = self.tallies
        for check in self.checks:
            for findings in check.walk(self.db, tallies.linked):
                drift = tallies.add(check, findings)
                if drift:
                    yield drift
            tallies.done(check)
        covered = link_coverage(self.db, [r for r in REGISTRY.relations() if r in tallies.counted], tallies.linked)
        measured = {rule.name: tallies.result(rule, covered) for rule in REGISTRY.rules()}
        if not self.backup_path:
            measured[DOCUMENTS_LOST.name].note = "no backup for this run (a dry run or a plain validation): " \
                                                 "nothing to check"
        self.result = Measurement(measured, covered)

    def measured(self) -> Measurement:
        """The measurement, the walk run to its end first if it has not been."""
        if self.result is None:
            deque(self, maxlen=0)
        assert self.result is not None
        return self.result


def measure(db: Database, *, backup_path: str | None = None, checks: Sequence[Check] | None = None) -> Measurement:
    """The measurement alone, its drift counted but not recorded (`linkage validate`, the benches, the tests)."""
    return Measuring(db, backup_path=backup_path, checks=checks).measured()
