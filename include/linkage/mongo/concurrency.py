"""Whether the server keeps two clients' updates of one document: what writing beside a live app needs.

MongoDB applies each update of a document atomically, so the app's `$set` of one
field and linkage's of another never undo each other. FerretDB 1.24 reads,
changes and rewrites the whole document without a lock, and under contention
loses about half of them (CONTRACT §8): nothing a client sends makes its writes
atomic there, so a run beside a writing app could lose the app's edits. Before a
run writes to the app's data (and before a rollback), two threads send
`PROBE_UPDATES` `$inc`s each to a scratch document of its own (two runs starting
together probe apart); if any was lost, the write is refused unless a person
says the app is not writing (`LINKAGE_APP_QUIET`). The probe can prove a loss,
never its absence: it is a guard, not a switch.
"""

from __future__ import annotations

import threading
from uuid import uuid4

from pydantic import BaseModel
from pymongo.collection import Collection

from linkage.core.errors import UpdatesLostError

PROBE_UPDATES = 50


class UpdateProbe(BaseModel):
    """Updates sent by two clients at once to one document, and how many the server kept."""

    sent: int
    kept: int

    @property
    def lost(self) -> int:
        return self.sent - self.kept


def probe_updates(scratch: Collection, per_client: int = PROBE_UPDATES) -> UpdateProbe:
    """Two threads (two pooled connections) `$inc` one new document `per_client` times each; the document is
    removed afterwards."""
    probe = {"_id": f"probe-{uuid4().hex}"}
    scratch.insert_one({**probe, "n": 0})
    start = threading.Barrier(2)

    def increments() -> None:
        start.wait()
        for _ in range(per_client):
            scratch.update_one(probe, {"$inc": {"n": 1}})

    threads = [threading.Thread(target=increments, name=f"linkage-update-probe-{i}") for i in range(2)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        kept = (scratch.find_one(probe) or {}).get("n", 0)
    finally:
        scratch.delete_one(probe)
    return UpdateProbe(sent=2 * per_client, kept=int(kept))


def require_kept_updates(probe: UpdateProbe, *, app_quiet: bool, what: str) -> None:
    """Refuse `what` (one line) on a server that lost an update, unless the app is said not to be writing."""
    if probe.lost and not app_quiet:
        raise UpdatesLostError(f"refusing {what}: this server lost {probe.lost} of {probe.sent} updates that two "
                               "clients sent to one document at once, so the app's edits made while linkage "
                               "writes could be lost; stop the app's writes and set LINKAGE_APP_QUIET=true, or use "
                               "a server that keeps them (MongoDB does)")
