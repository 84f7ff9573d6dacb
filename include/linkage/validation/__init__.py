"""CONTRACT §6: the expectations that decide whether a run is kept (imports `run` and below).

`metrics` computes the observations with MongoDB and attributes each violation
to the run or to drift; `gate` hands them to Great Expectations, which judges
them against the run's thresholds and writes the run's Data Docs.
"""

from linkage.core.outcome import ExpectationOutcome, ValidationOutcome

__all__ = ["ExpectationOutcome", "ValidationOutcome"]
