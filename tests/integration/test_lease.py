"""The lease does not need clocks to agree (CONTRACT §5 "Lock"): a process whose clock runs 100 s ahead, or a
holder whose clock runs 100 s behind, never sees a live lease as expired (every lease time is the server's);
and a holder whose heartbeat is stuck stops writing before its lease could have lapsed by its own clock.
Clock offsets per process come from Debian's `faketime` (`make system-deps`)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from pymongo.database import Database

from linkage.core.errors import LockHeldError, LockLostError
from linkage.core.settings import Settings
from linkage.run.session import Linkage
from linkage.store.lease import Lease

from faults import FaultProxy
from helpers import ROOT

pytestmark = pytest.mark.skipif(shutil.which("faketime") is None, reason="faketime is not installed "
                                                                         "(make system-deps)")

TAKE = """
import sys
from pymongo import MongoClient
from linkage.core.errors import LockHeldError
from linkage.store.lease import Lease
lock = MongoClient(sys.argv[1])[sys.argv[2]].linkage_lock
try:
    Lease.acquire(lock, "skewed-run", "skewed", 60)
except LockHeldError as exc:
    print("refused:", exc)
    sys.exit(3)
print("taken")
"""

HOLD = """
import sys
from pymongo import MongoClient
from linkage.store.lease import Lease
lock = MongoClient(sys.argv[1])[sys.argv[2]].linkage_lock
lease = Lease.acquire(lock, "behind-run", "behind", float(sys.argv[3]))
print("held", flush=True)
for line in sys.stdin:  # renewed when asked (libfaketime breaks timed sleeps and waits in a skewed process)
    lease.renew()
    lease.guard()
    print("renewed", flush=True)
lease.release()
"""


def _skewed(offset: str, script: str, *args: str) -> list[str]:
    return ["faketime", "-f", offset, sys.executable, "-c", script, *args]


def test_a_process_whose_clock_runs_100_s_ahead_never_takes_a_live_lease(settings: Settings, db: Database) -> None:
    held = Lease.acquire(db.linkage_lock, "live-run", "holder", 60).start_heartbeat()
    try:
        done = subprocess.run(_skewed("+100s", TAKE, settings.mongo_uri, settings.db), capture_output=True,
                              text=True, timeout=120, cwd=ROOT)
        assert done.returncode == 3, done.stdout + done.stderr
        assert "live-run" in done.stdout
        held.guard()
    finally:
        held.release()


def test_a_holder_whose_clock_runs_100_s_behind_keeps_its_lease_for_as_long_as_it_renews_it(
        settings: Settings, db: Database) -> None:
    ttl = 6
    holder = subprocess.Popen(_skewed("-100s", HOLD, settings.mongo_uri, settings.db, str(ttl)), stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    assert holder.stdin is not None and holder.stdout is not None
    try:
        assert holder.stdout.readline().strip() == "held", holder.stderr
        for _ in range(3):  # at once, then across more than a TTL, renewed every 3 s by the server's clock
            with pytest.raises(LockHeldError, match="behind-run"):
                Lease.acquire(db.linkage_lock, "other-run", "other", 60)
            time.sleep(ttl / 2)
            holder.stdin.write("renew\n")
            holder.stdin.flush()
            assert holder.stdout.readline().strip() == "renewed"
        holder.stdin.close()
        assert holder.wait(timeout=60) == 0
    finally:
        holder.kill()


@contextmanager
def _through(settings: Settings, proxy: FaultProxy) -> Iterator[Linkage]:
    lk = Linkage(settings.model_copy(update={"mongo_uri": proxy.uri, "lock_ttl_seconds": 4}))
    try:
        yield lk
    finally:
        lk.close()


def test_a_stalled_heartbeat_stops_the_holder_before_its_lease_could_lapse(settings: Settings, db: Database,
                                                                          wire_server: object) -> None:
    with FaultProxy(wire_server.uri) as proxy, _through(settings, proxy) as lk:  # type: ignore[attr-defined]
        lk.runs.ensure_indexes()
        lk.runs.create(*_run_args(settings))
        with lk.hold("stalled-run"):
            lk.guard()
            lk.fence("batch-0")
            proxy.stall(lambda c: c.name == "findAndModify" and c.collection == settings.collection("lock"),
                        seconds=20, times=5)
            time.sleep(4)  # no renewal lands: by the holder's own clock its lease could lapse within the TTL
            with pytest.raises(LockLostError, match="could have lapsed"):
                lk.guard()
            with pytest.raises(LockLostError):
                lk.fence("batch-1")


def _run_args(settings: Settings) -> tuple:
    from linkage.core.models import RunKind
    from linkage.run.params import MigrationParams

    return RunKind.MIGRATE, MigrationParams(), "test", "stalled-run", None
