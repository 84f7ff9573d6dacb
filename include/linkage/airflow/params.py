"""The DAGs' Params forms, built from `MigrationParams` and the registry: titles, descriptions and limits are
defined once, and each registered relation brings its threshold Param."""

from __future__ import annotations

from typing import Any

from airflow.sdk import Param

from linkage.relations import REGISTRY
from linkage.run.params import MigrationParams

_KEYWORDS = ("title", "description", "minimum", "maximum")


def form(descriptions: dict[str, str] | None = None) -> dict[str, Param]:
    """One Param per MigrationParams field and per registered threshold, defaulting to the model's defaults (the
    CLI's too: one default for each, everywhere); `steps` is a multi-select of the registered steps.

    `descriptions` adds a DAG's own words to a field's description.
    """
    schema = MigrationParams.model_json_schema()["properties"]
    values = MigrationParams().model_dump(mode="json")
    params = {}
    for name, prop in schema.items():
        if name == "thresholds":
            continue  # one Param each, below
        keywords: dict[str, Any] = {k: prop[k] for k in _KEYWORDS if k in prop}
        if name == "steps":
            keywords.update(type="array", items={"type": "string", "enum": list(REGISTRY)}, examples=list(REGISTRY),
                            uniqueItems=True, minItems=1,
                            values_display={step: spec.label for step, spec in REGISTRY.items()})
        else:
            keywords["type"] = prop["type"]
        params[name] = Param(values[name], **keywords)
    for threshold in REGISTRY.thresholds():
        params[threshold.parameter] = Param(values["thresholds"][threshold.parameter], type="number", minimum=0,
                                            maximum=1, title=threshold.title, description=threshold.description)
    for name, extra in (descriptions or {}).items():
        params[name].description = f"{params[name].description} {extra}"
    return params
