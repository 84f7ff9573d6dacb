"""linkage's own collections and formats: the journal (and its codec), the lease, the review queue and its
key, the store of people's decisions, and the backup format.

Imports `mongo` and `core` only.
"""
