"""Walking a collection and writing what the rules say: the pass loop (`passes`), partitions of a walk,
read-ahead, the live and dry writers, conditional writes, and link coverage.

Imports `store`, `mongo` and `core` only; it knows no relation (they plug in from `relations`).
"""
