"""The registry of steps: every relation linkage links, in the order runs work them.

The plan, the CLI, the Params form, validation and `linkage status` iterate
this registry and never name a step; a new relation is a new module
(`base.StepSpec`) registered here. Like alembic's revision map checks its graph
when it loads, the registry checks each step as it is registered: a unique id,
phases for every kind of run, rules unique across the registry and each one
measured by a check of its own step, thresholds unique. A mistake there is an
error at import, never a rule that silently passes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

from linkage.core.comparing import Comparator
from linkage.core.models import RunKind
from linkage.engine.coverage import Relation
from linkage.mongo.indexes import IndexSpec
from linkage.relations import order_delivery, user_customer
from linkage.relations.base import Phase, StepContext, StepSpec, Subject
from linkage.relations.checks import Check
from linkage.relations.rules import DOCUMENTS_LOST, Rule, RuleKind, Threshold
from linkage.store.decisions import StateFields

#: The kinds of run every relation takes part in with phases of its own (a decisions run has only the
#: `decided` phase, of the steps that take decisions).
LINK_KINDS = (RunKind.MIGRATE, RunKind.RECONCILE)
_ID = re.compile(r"[a-z][a-z0-9_]*")


class RegistryError(ValueError):
    """A step that cannot be registered as it is: the message names the step and what is wrong."""


def _check_phases(spec: StepSpec) -> None:
    for kind in LINK_KINDS:
        names = spec.phase_names(kind)
        if not names:
            raise RegistryError(f"step {spec.id} has no phases for a {kind} run")
        if len(names) != len(set(names)):
            raise RegistryError(f"step {spec.id} names a phase twice in a {kind} run: {names}")


def _check_rules(spec: StepSpec, known: set[str]) -> None:
    names = [rule.name for rule in spec.rules]
    for name in names:
        if name in known or names.count(name) > 1:
            raise RegistryError(f"step {spec.id}: rule {name} is declared twice")
    for rule in spec.rules:
        if rule.step != spec.id:
            raise RegistryError(f"step {spec.id}: rule {rule.name} says it belongs to step {rule.step}")
    declared = set(spec.rules)
    for check in spec.checks:
        for rule in check.measures:
            if rule not in declared:
                raise RegistryError(f"step {spec.id}: check {check.name} measures rule {rule.name}, "
                                    "which the step does not declare")
    for relation in spec.relations:
        if not any(relation in check.counts for check in spec.checks):
            raise RegistryError(f"step {spec.id}: no check counts the links of {relation.name}")
    for rule in spec.rules:
        if rule.kind == RuleKind.COVERAGE:
            if rule.relation not in spec.relations:
                raise RegistryError(f"step {spec.id}: coverage rule {rule.name} judges a relation the step does "
                                    "not declare")
        elif sum(rule in check.measures for check in spec.checks) != 1:
            raise RegistryError(f"step {spec.id}: rule {rule.name} must be measured by exactly one check")


class Registry(Mapping[str, StepSpec]):
    """The registered steps by id, in registration order."""

    def __init__(self, *specs: StepSpec) -> None:
        self._specs: dict[str, StepSpec] = {}
        for spec in specs:
            self.register(spec)

    def __getitem__(self, step: str) -> StepSpec:
        try:
            return self._specs[step]
        except KeyError:
            raise KeyError(f"unknown step {step!r}: choose from {', '.join(self._specs)}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)

    def register(self, spec: StepSpec) -> None:
        if not _ID.fullmatch(getattr(spec, "id", "") or ""):
            raise RegistryError(f"step {spec!r}: its id must be lower-case letters, digits and underscores")
        if spec.id in self._specs:
            raise RegistryError(f"step {spec.id} is registered twice")
        if not spec.writes:
            raise RegistryError(f"step {spec.id} names no collection it writes")
        unread = sorted(set(spec.writes) - set(getattr(spec, "reads", ())))
        if unread:
            raise RegistryError(f"step {spec.id} writes {', '.join(unread)} but does not declare that it reads it")
        _check_phases(spec)
        _check_rules(spec, {rule.name for rule in self.rules()})
        taken = {t.parameter for t in self.thresholds()}
        for threshold in spec.thresholds:
            if threshold.parameter in taken:
                raise RegistryError(f"step {spec.id}: threshold {threshold.parameter} is another step's")
        self._specs[spec.id] = spec

    def unregister(self, step: str) -> None:
        del self._specs[step]

    @contextmanager
    def registered(self, spec: StepSpec) -> Iterator[StepSpec]:
        """A step registered for the duration of a block (a plug-in tried out, a test's toy relation)."""
        self.register(spec)
        try:
            yield spec
        finally:
            self.unregister(spec.id)

    # what the rest of linkage iterates -----------------------------------------------------------------------
    def rules(self) -> list[Rule]:
        """Every rule, the relations' in registry order, then the run's own (`documents_lost`)."""
        return [rule for spec in self._specs.values() for rule in spec.rules] + [DOCUMENTS_LOST]

    def checks(self) -> list[Check]:
        return [check for spec in self._specs.values() for check in spec.checks]

    def relations(self) -> list[Relation]:
        return [relation for spec in self._specs.values() for relation in spec.relations]

    def thresholds(self) -> list[Threshold]:
        return [threshold for spec in self._specs.values() for threshold in spec.thresholds]

    def indexes(self) -> list[IndexSpec]:
        return [index for spec in self._specs.values() for index in spec.indexes]

    def writes(self, steps: list[str]) -> list[str]:
        """The app collections runs of these steps write (what they back up), sorted."""
        return sorted({name for step in steps for name in self[step].writes})

    def reads(self, steps: Sequence[str] | None = None) -> list[str]:
        """The app collections runs of these steps (every step by default) read, sorted."""
        return sorted({name for step in (self if steps is None else steps) for name in self[step].reads})

    def scratch(self) -> list[str]:
        return [name for spec in self._specs.values() for name in spec.scratch]

    def subject(self, step: str, collection: str) -> Subject | None:
        """What a person's decision on a review item of `step` about a document of `collection` may write."""
        spec = self._specs.get(step)
        return next((s for s in spec.subjects if s.collection == collection), None) if spec else None

    def comparator(self, step: str, collection: str) -> Comparator | None:
        """How review items of `step` about documents of `collection` are compared with their candidates."""
        spec = self._specs.get(step)
        return next((c for c in spec.comparators if c.collection == collection), None) if spec else None

    def state_fields(self) -> dict[str, StateFields]:
        """Per collection review items are about, what a decided document's state is made of (every step's)."""
        fields: dict[str, StateFields] = {}
        for subject in (s for spec in self._specs.values() for s in spec.subjects):
            known = fields.get(subject.collection, StateFields(keys=(), links=()))
            fields[subject.collection] = StateFields(keys=tuple(dict.fromkeys((*known.keys, *subject.keys))),
                                                     links=tuple(dict.fromkeys((*known.links, subject.link))))
        return fields


REGISTRY = Registry(order_delivery.SPEC, user_customer.SPEC)

__all__ = ["LINK_KINDS", "REGISTRY", "Phase", "Registry", "RegistryError", "StepContext", "StepSpec", "Subject"]
