"""A document's `_id` as a key every module can store, compare and match: the review queue, the decisions, the
journal and the lookups all name documents by it, so it lives below all of them."""

from __future__ import annotations

from typing import Any


def id_key(oid: Any) -> str:
    """A document `_id` as a typed string: every server matches one inside an array (the embedded
    server cannot match an ObjectId there), and the common types come back from it exactly."""
    return f"{type(oid).__name__}:{oid}"
