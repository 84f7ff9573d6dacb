"""linkage's own collections (`linkage_*`), each reached the one way bookkeeping must be reached.

Written with majority and journaled and read from the primary, whatever the URI says
(`linkage.mongo.concerns`), and retried through a failover (`linkage.mongo.transient`). The run handle makes
one and hands it to the stores and to the relations' scratch phases, so a relation asking for its scratch
collection calls this, not back into the handle.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.read_concern import ReadConcern

from linkage.mongo.concerns import durable
from linkage.mongo.transient import retrying


@dataclass(frozen=True)
class Bookkeeping:
    """`bookkeeping("journal")`: the durable, retried `linkage_journal` (or the prefix the settings give)."""

    db: Database
    #: a short name -> the collection's full name (`Settings.collection`)
    named: Callable[[str], str]
    read_concern: ReadConcern
    retry_seconds: float

    def __call__(self, name: str) -> Collection:
        return retrying(durable(self.db[self.named(name)], self.read_concern), self.retry_seconds)
