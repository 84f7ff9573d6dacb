"""What a run can be asked to do: the one model the CLI's flags and the DAGs' Params forms are built from.

The field titles, descriptions and limits are what the CLI's help and the
Params forms show. The steps and the coverage thresholds come from the
registry: a registered relation brings its threshold parameter with it (a flag,
a Param, an entry of the stored `thresholds`). A parameter nobody knows is
refused, never ignored: a misspelt threshold must not leave the default in force.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from linkage.relations import REGISTRY


def registered_steps() -> list[str]:
    return list(REGISTRY)


class MigrationParams(BaseModel):
    """What a run was asked to do; stored with the run and echoed in reports."""

    model_config = ConfigDict(extra="forbid")

    steps: list[str] = Field(default_factory=registered_steps, title="Migrations to run",
                             description="The relations to link, in registry order: order_delivery (002: "
                                         "delivery_statuses.order_id) and user_customer (003: users.customer_v2_id "
                                         "<-> customers_v2.user_id) unless more are registered.")
    dry_run: bool = Field(default=False, title="Dry run",
                          description="Compute and record every count and the drift found; write nothing "
                                      "to the app's collections or the review queue.")
    batch_size: int = Field(default=1000, ge=1, le=50_000, title="Batch size",
                            description="Documents per journaled batch (one bulk write each).")
    partitions: int = Field(default=1, ge=1, le=64, title="Partitions",
                            description="Key ranges per backfill phase, worked at once "
                                        "(one mapped task instance each in Airflow).")
    rollback_on_failure: bool = Field(default=True, title="Roll back on failed validation",
                                      description="Undo the run through its journal when a document it wrote "
                                                  "breaks an expectation or coverage is below the threshold.")
    full_backup: bool = Field(default=False, title="Full backup",
                              description="Back up every document of the collections the run writes, not only "
                                          "the ones it is about to change (a migration always does).")
    allow_empty: bool = Field(default=False, title="Allow empty collections",
                              description="Pass the coverage of a relation with no documents (a step run on an empty "
                                          "collection on purpose); otherwise coverage of nothing fails the run: "
                                          "a gate that passes an empty database checked nothing.")
    thresholds: dict[str, float] = Field(default_factory=dict, title="Coverage thresholds",
                                         description="Per threshold parameter of the registered relations "
                                                     "(min_order_coverage, min_user_coverage, ...): the share of "
                                                     "documents that must carry their link after the run.")

    @model_validator(mode="before")
    @classmethod
    def _thresholds_given_flat(cls, data: Any) -> Any:
        """A threshold may be given by its own name (`min_order_coverage=0.9`), as flags and Params give it."""
        if not isinstance(data, dict):
            return data
        known = {t.parameter for t in REGISTRY.thresholds()}
        flat = {key: value for key, value in data.items() if key in known}
        rest = {key: value for key, value in data.items() if key not in known}
        return {**rest, "thresholds": {**(rest.get("thresholds") or {}), **flat}}

    @field_validator("steps")
    @classmethod
    def _registered(cls, steps: list[str]) -> list[str]:
        unknown = [step for step in steps if step not in REGISTRY]
        if unknown:
            raise ValueError(f"unknown step {', '.join(map(repr, unknown))}: choose from {', '.join(REGISTRY)}")
        if not steps:
            raise ValueError(f"choose at least one step of {', '.join(REGISTRY)}")
        return list(dict.fromkeys(steps))

    @field_validator("thresholds")
    @classmethod
    def _every_threshold(cls, given: dict[str, float]) -> dict[str, float]:
        defaults = {t.parameter: t.default for t in REGISTRY.thresholds()}
        unknown = sorted(set(given) - set(defaults))
        if unknown:
            raise ValueError(f"unknown threshold {', '.join(unknown)}: choose from {', '.join(defaults)}")
        out_of_range = sorted(name for name, value in given.items() if not 0.0 <= value <= 1.0)
        if out_of_range:
            raise ValueError(f"{', '.join(out_of_range)} must be between 0 and 1")
        return {**defaults, **given}
