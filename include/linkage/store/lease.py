"""One migration run per database at a time: a lease with a TTL and a heartbeat.

The lease is one document in `<prefix>lock`. It is taken by inserting it (the
unique `_id` makes two takers race safely), renewed and handed over by
compare-and-swap on a random token, and released by deleting it with that token.

The holder is a *run*, not a process: an Airflow run acquires the lease in one
task and works in later ones, each of which claims the lease back (records its
own pid and heartbeats) and `park`s it when done (clears the pid; the TTL then
covers the gap until the next task). A lease is taken over when its TTL has
expired, or at once when its holder is a process on this host that no longer
exists.

Expiry never depends on two hosts' clocks agreeing: every lease time is the
database server's (`hello`'s `localTime`), read when the lease is written or
judged, so a taker whose clock runs 100 s ahead sees the same expiry as the
holder. The holder, in turn, stops writing before its lease could have lapsed
by its own monotonic clock: each renewal sets a deadline (the monotonic time
the renewal was begun at, plus the TTL, less a margin for a batch in flight),
and `guard()` refuses once it has passed, so a heartbeat stuck on a stalled
socket stops the run at its next write rather than letting it write beside a
taker. Each batch's writes are also fenced (`fence`): one atomic update of the
lease document that succeeds only while it is still this holder's and has at
least the margin to run.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from datetime import datetime, timezone
from typing import Any

from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError, PyMongoError

from linkage.core.errors import LockHeldError, LockLostError

LOCK_ID = "migration"


def server_time(coll: Collection) -> float:
    """The database server's clock, in epoch seconds (`hello`'s `localTime`: MongoDB, mongos and both servers
    linkage is tested on report it). Lease times are numbers: they compare alike on every server (the embedded
    one turns a `$set` datetime into a string)."""
    local = coll.database.client.admin.command("hello")["localTime"]
    return float(local.replace(tzinfo=timezone.utc).timestamp())


def margin(ttl: float) -> float:
    """How long before its lease could lapse a holder stops writing: room for one batch in flight."""
    return min(ttl / 4, 30.0)


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="seconds")


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def describe(doc: dict[str, Any]) -> str:
    pid = f" pid {doc['pid']}" if doc.get("pid") else ""
    return (f"run {doc.get('run_id')} ({doc.get('owner')}) on {doc.get('host')}{pid}, "
            f"lease until {_iso(doc['expires_at'])}")


def takeover_reason(doc: dict[str, Any], now: float) -> str | None:
    """Why an existing lease may be taken, or None while its holder may be alive."""
    if doc["expires_at"] <= now:
        return "lease expired"
    if doc.get("host") == socket.gethostname() and doc.get("pid") and not process_alive(doc["pid"]):
        return f"holder pid {doc['pid']} no longer exists"
    return None


class Lease:
    """A held lease; `guard()` raises LockLostError once it is no longer ours."""

    def __init__(self, coll: Collection, run_id: str, ttl: float, match: dict[str, Any], since: float) -> None:
        self.coll, self.run_id, self.ttl = coll, run_id, ttl
        self.match = {"_id": LOCK_ID, **match}
        #: The monotonic time after which the lease could have lapsed (less the margin): no write after it.
        self.deadline = since + ttl - margin(ttl)
        self._lost: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # acquiring ------------------------------------------------------------
    @classmethod
    def acquire(cls, coll: Collection, run_id: str, owner: str, ttl: float) -> "Lease":
        """Take the lease for `run_id`, or raise LockHeldError naming the holder.

        A lease this run already holds is claimed back when it is parked (between
        Airflow tasks) or its process is gone (a resumed run); never while a live
        process of the same run still works under it.
        """
        since = time.monotonic()
        now, token = server_time(coll), uuid.uuid4().hex
        doc = {"_id": LOCK_ID, "run_id": run_id, "owner": owner, "host": socket.gethostname(),
               "pid": os.getpid(), "token": token, "acquired_at": now, "expires_at": now + ttl}
        for _ in range(3):  # a lease released between the insert and the read: try again, a few times
            try:
                coll.insert_one(doc)
                return cls(coll, run_id, ttl, {"token": token}, since)
            except DuplicateKeyError:
                pass
            current = coll.find_one({"_id": LOCK_ID})
            if current is not None and current.get("token") == token:  # ours: the insert's reply was lost
                return cls(coll, run_id, ttl, {"token": token}, since)
            if current is not None:
                break
        else:
            raise LockHeldError("the migration lock changes hands too fast to take; try again")
        reason = takeover_reason(current, now)
        if current.get("run_id") == run_id and current.get("pid") is None:
            reason = "parked by this run"
        if reason is None:
            raise LockHeldError(f"another migration holds the lock: {describe(current)}")
        doc["taken_over"] = {"from_run": current.get("run_id"), "reason": reason}
        if coll.find_one_and_update({"_id": LOCK_ID, "token": current["token"]}, {"$set": doc}) is None:
            raise LockHeldError("another migration took the lock at the same moment; try again")
        return cls(coll, run_id, ttl, {"token": token}, since)

    @classmethod
    def join(cls, coll: Collection, run_id: str, ttl: float) -> "Lease":
        """Work under the lease `run_id` already holds, alongside its other tasks.

        Mapped partitions of one Airflow run work at the same time, so they share
        the run's lease instead of taking it: each heartbeats it while working.
        Fails with LockLostError when the lease now belongs to another run.
        """
        since = time.monotonic()
        now = server_time(coll)
        joined = coll.find_one_and_update({"_id": LOCK_ID, "run_id": run_id},
                                          {"$set": {"expires_at": now + ttl, "heartbeat_at": now}})
        if joined is None:
            current = coll.find_one({"_id": LOCK_ID})
            raise LockLostError(f"run {run_id} does not hold the migration lock "
                                f"(holder: {describe(current) if current else 'nobody'})")
        return cls(coll, run_id, ttl, {"run_id": run_id}, since)

    # holding --------------------------------------------------------------
    def renew(self) -> None:
        """Extend the lease by a TTL of the server's time; the deadline moves only once the renewal landed."""
        since = time.monotonic()
        try:
            now = server_time(self.coll)
            ok = self.coll.find_one_and_update(self.match,
                                               {"$set": {"expires_at": now + self.ttl, "heartbeat_at": now}})
        except PyMongoError:
            return  # the next renewal, or the deadline, decides; a blip is not a loss
        if ok is None:
            self._lost = f"run {self.run_id} lost the migration lock (taken over or released)"
        else:
            self.deadline = since + self.ttl - margin(self.ttl)

    def start_heartbeat(self) -> "Lease":
        def beat() -> None:
            while not self._stop.wait(self.ttl / 3):
                self.renew()
                if self._lost:
                    return
        self._thread = threading.Thread(target=beat, name="linkage-lease", daemon=True)
        self._thread.start()
        return self

    def guard(self) -> None:
        """Refuse a write once the lease is not ours, or could have lapsed by this process's own clock."""
        if self._lost:
            raise LockLostError(self._lost)
        late = time.monotonic() - self.deadline
        if late > 0:
            raise LockLostError(f"run {self.run_id} stops: its lease could have lapsed (no renewal landed for "
                                f"{self.ttl - margin(self.ttl) + late:.0f} s of a {self.ttl:g} s TTL); resume it")

    def fence(self, batch: str) -> None:
        """Before a batch's writes: the deadline has not passed (so, by the server's clock, the lease has at least
        the margin left: the deadline counts from before the renewal asked the server's time), and one atomic
        update of the lease document finds it still this holder's (not taken over meanwhile, say as a dead
        process's). One round trip a batch."""
        self.guard()
        fenced = self.coll.find_one_and_update(self.match, {"$set": {"fenced": batch}})
        if fenced is None:
            self._lost = f"run {self.run_id} stops before batch {batch}: its lease is no longer its own, or lapsing"
            raise LockLostError(self._lost)

    def stop_heartbeat(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)

    def park(self) -> None:
        """Keep the lease for this run but let this process go (between tasks)."""
        self.stop_heartbeat()
        self.coll.update_one(self.match, {"$set": {"pid": None, "expires_at": server_time(self.coll) + self.ttl}})

    def release(self) -> None:
        self.stop_heartbeat()
        self.coll.delete_one(self.match)


def release_run(coll: Collection, run_id: str) -> bool:
    """Release whatever lease `run_id` holds (a teardown that must not need the token)."""
    return coll.delete_one({"_id": LOCK_ID, "run_id": run_id}).deleted_count == 1


def holder(coll: Collection) -> dict[str, Any] | None:
    return coll.find_one({"_id": LOCK_ID}, {"token": 0})
