"""People and the review queue: decisions in (`intake`, and `acceptance` of suggestions in bulk), items out
(`pages`, the CSV export), the evidence batches and the suggestion model, and the suggestions' quality.

Imports `run` and below; independent of `validation` (neither imports the other).
"""
