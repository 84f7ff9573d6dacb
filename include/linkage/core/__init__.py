"""The vocabulary every layer speaks: the app's schema, the models (categories, a document's `Ruling`, run
kinds and states), settings, errors, the clock, normalising and masking values, CSV safety, people, evidence
and the comparison of fields, a validation's outcome, progress and words.

The bottom layer: it imports nothing from linkage outside `core` (import-linter's layers contract, `.importlinter`).
"""
