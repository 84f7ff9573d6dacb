"""What validation concluded, as stored with the run and shown everywhere (no GX import here).

A run is judged on what it wrote. Every expectation carries two numbers:
`observed`, the violations in documents this run wrote (or, for coverage, the
ratio), which decide whether the run is kept; and `drift`, the violations it
found but did not cause, which become review items and a "drift found" alert
while the run is kept.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class ExpectationOutcome(BaseModel):
    name: str
    suite: str
    description: str
    success: bool
    observed: float | None
    threshold: str
    examples: list[str] = Field(default_factory=list)
    drift: int = 0
    drift_examples: list[str] = Field(default_factory=list)
    note: str | None = None

    @property
    def shown(self) -> str:
        """The observed value as people read it: `386`, `0.8682`, or `-` when nothing was observed."""
        return "-" if self.observed is None else f"{self.observed:g}"


class ValidationOutcome(BaseModel):
    success: bool
    expectations: list[ExpectationOutcome]
    data_docs: str | None = None

    @property
    def failed(self) -> list[ExpectationOutcome]:
        return [e for e in self.expectations if not e.success]

    @property
    def drift(self) -> int:
        return sum(e.drift for e in self.expectations)

    def as_record(self) -> dict[str, object]:
        """As stored with the run and printed by `--json`: with the names of the failed expectations."""
        return {**self.model_dump(), "failed": [e.name for e in self.failed]}

    def failure_reason(self) -> str:
        return "; ".join(f"{e.name} observed {e.observed}, expected {e.threshold}" for e in self.failed)

    def drift_summary(self) -> str:
        return ", ".join(f"{e.name} {e.drift}" for e in self.expectations if e.drift)

    def table(self) -> str:
        """Every expectation as a plain-text table: what the `validate` log ends with."""
        rows = [("expectation", "observed", "threshold", "result", "drift")]
        rows += [(e.name, e.shown, e.threshold,
                  "pass" if e.success else "FAIL", str(e.drift)) for e in self.expectations]
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
                         for row in rows)
