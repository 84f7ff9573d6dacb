"""Durable bookkeeping, whatever the URI says: majority-acknowledged journaled writes, majority reads from the
primary (CONTRACT §5, "Durable bookkeeping"; docs/CONTRACT.md §8).

The journal, the lease, the partition claims, the run records, the review queue and people's decisions are
what make a run resumable, exclusive and reversible. On a replica set whose default is `w:1` (a PSA set,
MongoDB 4.4 and older, any URI with `w=1`), an old primary can acknowledge a batch's journal document and lose
it in a failover while the new primary takes the batch's link writes: links no journal describes, which no
rollback can undo. So every `linkage_*` collection is opened with `w: majority, j: true` and a `wtimeout`,
read with majority read concern (where the server offers it) from the primary, as mongock keeps its lock and
changelog. A `readPreference=secondaryPreferred` in the URI, common on Atlas, still applies to the app's
reads, never to the bookkeeping's. A batch's app writes go out only after its journal document was
acknowledged so (the apply stage marks it `pending` first), and a URI asking for unacknowledged writes
(`w=0`) is refused: nothing it writes could be known to have landed.

A write-concern error is not a success: `refuse_unconfirmed` turns one into `WriteNotDurable`, which no
code path retries or counts as matched.
"""

from __future__ import annotations

from typing import Any

from pymongo import MongoClient, ReadPreference, WriteConcern
from pymongo.collection import Collection
from pymongo.errors import BulkWriteError, OperationFailure
from pymongo.read_concern import ReadConcern

from linkage.core.errors import LinkageError

#: How long a majority acknowledgement may take before the write counts as failed (an election takes 10-12 s).
WTIMEOUT_MS = 30_000
MAJORITY = WriteConcern("majority", j=True, wtimeout=WTIMEOUT_MS)


class WriteNotDurable(LinkageError):
    """A write the server applied but could not acknowledge as durable (a write-concern error)."""


#: The errors a server answers when it does not offer the majority read concern itself (as a MongoDB 4.x PSA set
#: with `enableMajorityReadConcern: false` does): ReadConcernMajorityNotEnabled, InvalidOptions, FailedToParse.
NO_MAJORITY_READS = frozenset({148, 72, 9})


def read_concern_for(client: MongoClient) -> ReadConcern:
    """Majority reads where the server offers them (MongoDB on WiredTiger, every replica set, nx and FerretDB);
    the server's default where it refuses the level itself. Asked of the `admin` database, never of the app's:
    a typo'd database must not be created by the question (nx creates a database a command names). Any other
    refusal (a role without privileges on `admin`) says nothing against majority reads."""
    try:
        client.admin.command("find", "linkage_read_concern_probe", filter={"_id": None}, limit=1,
                             readConcern={"level": "majority"})
    except OperationFailure as exc:
        if exc.code in NO_MAJORITY_READS:
            return ReadConcern()
    return ReadConcern("majority")


def durable(coll: Collection, read_concern: ReadConcern) -> Collection:
    """`coll` as bookkeeping is written and read: majority and journaled, `read_concern` (`read_concern_for`),
    from the primary."""
    return coll.with_options(write_concern=MAJORITY, read_concern=read_concern, read_preference=ReadPreference.PRIMARY)


def refuse_unacknowledged(client: MongoClient, shown_uri: str) -> None:
    """A URI with `w=0` asks for writes nobody acknowledges: linkage cannot journal before it writes with it."""
    if not client.write_concern.acknowledged:
        raise LinkageError(f"the MongoDB URI {shown_uri} asks for unacknowledged writes (w=0): linkage journals "
                           "every batch before writing it and must know what landed; remove w=0 from the URI.")


def refuse_unconfirmed(exc: BulkWriteError) -> None:
    """Raise `WriteNotDurable` when a bulk write's failure includes a write-concern error."""
    errors = exc.details.get("writeConcernErrors") or []
    if errors:
        first = errors[0]
        raise WriteNotDurable(f"the server applied a write but could not confirm it durable (write concern: "
                              f"{first.get('errmsg', first.get('code'))}); the run stops rather than count it "
                              "as done") from None


def _concern(concern: WriteConcern) -> str:
    doc = concern.document
    return ", ".join(f"{key}={value}" for key, value in sorted(doc.items())) or "the server's default"


def describe(client: MongoClient, read_concern: ReadConcern) -> dict[str, Any]:
    """The topology and the concerns in force, for preflight and `linkage status` (no credentials)."""
    return {
        "topology": client.topology_description.topology_type_name,
        "app": {"write_concern": _concern(client.write_concern), "read_preference": client.read_preference.name,
                "read_concern": client.read_concern.level or "the server's default"},
        "bookkeeping": {"write_concern": _concern(MAJORITY), "read_preference": ReadPreference.PRIMARY.name,
                        "read_concern": read_concern.level or "the server's default"},
    }
