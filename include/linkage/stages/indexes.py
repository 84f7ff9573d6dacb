"""The create_indexes stage: the indexes every registered relation declares (CONTRACT §4), created where
missing and reported per index (created, present, or the fallback a server forced), kept with the run."""

from __future__ import annotations

from typing import Any

from linkage.mongo.indexes import describe_outcomes, ensure_indexes
from linkage.relations import REGISTRY
from linkage.run.session import Linkage


def create_indexes(lk: Linkage, run_id: str) -> dict[str, Any]:
    """The indexes every registered step declares (CONTRACT §4), created where missing."""
    summary = describe_outcomes(ensure_indexes(lk.app, REGISTRY.indexes(), lk.settings.collection("index_probe")))
    lk.runs.update(run_id, indexes=summary)
    return summary
