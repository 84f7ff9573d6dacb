"""The DAGs' Params forms, built from `MigrationParams`: titles, descriptions and limits are defined once."""

from __future__ import annotations

from typing import Any

from airflow.sdk import Param

from linkage.models import MigrationParams, Step

STEP_LABELS = {Step.ORDER_DELIVERY: "002: delivery statuses -> orders",
               Step.USER_CUSTOMER: "003: users <-> customer profiles"}
_KEYWORDS = ("title", "description", "minimum", "maximum")


def form(defaults: MigrationParams, descriptions: dict[str, str] | None = None) -> dict[str, Param]:
    """One Param per MigrationParams field, defaulting to `defaults`; `steps` is a multi-select.

    `descriptions` adds a DAG's own words to a field's description.
    """
    schema = MigrationParams.model_json_schema()["properties"]
    values = defaults.model_dump(mode="json")
    params = {}
    for name, prop in schema.items():
        keywords: dict[str, Any] = {k: prop[k] for k in _KEYWORDS if k in prop}
        if descriptions and name in descriptions:
            keywords["description"] = f"{keywords['description']} {descriptions[name]}"
        if name == "steps":
            keywords.update(type="array", items={"type": "string", "enum": [s.value for s in Step]},
                            examples=[s.value for s in Step], uniqueItems=True, minItems=1,
                            values_display={s.value: label for s, label in STEP_LABELS.items()})
        else:
            keywords["type"] = prop["type"]
        params[name] = Param(values[name], **keywords)
    return params
