"""The registry of steps: every relation linkage links, in the order runs work them.

The pipeline, the CLI and the DAG factory iterate this registry and never name
a step; a new relation is a new module here (see `base.StepSpec`).
"""

from __future__ import annotations

from linkage.models import Step
from linkage.steps import order_delivery, user_customer
from linkage.steps.base import Phase, StepContext, StepSpec

REGISTRY: dict[Step, StepSpec] = {spec.step: spec for spec in (order_delivery.SPEC, user_customer.SPEC)}

__all__ = ["REGISTRY", "Phase", "StepContext", "StepSpec"]
