"""SPEC §6: expectation suites that decide whether a run is kept.

`metrics` computes the observations with MongoDB; `gate` hands them to Great
Expectations, which judges them against the run's thresholds and writes Data Docs.
"""

from linkage.validation.gate import ExpectationOutcome, ValidationOutcome, validate

__all__ = ["ExpectationOutcome", "ValidationOutcome", "validate"]
