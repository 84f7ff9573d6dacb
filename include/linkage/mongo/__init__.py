"""Talking to MongoDB: connecting (`connect`), read and write concerns, retries of transient errors, resumable
cursors, bulk writes, counting, index-backed lookups, indexes and shard keys, the concurrency probe, and the
guarded proxies that ask a run's guard before every write.

Imports `core` only.
"""
