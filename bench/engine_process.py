"""The engine's side of a benchmark, run in a fresh process so its peak RSS is the engine's own.

    python -m bench.engine_process URI DB WORKDIR                  # backfill, validation, rollback
    python -m bench.engine_process URI DB WORKDIR --validate       # validation only (linked data)
    python -m bench.engine_process URI DB WORKDIR --backfill-only  # backfill and rollback, no validation
    python -m bench.engine_process URI DB WORKDIR --migrate        # one whole migration, as the CLI runs it
    python -m bench.engine_process URI DB WORKDIR --reconcile      # one whole nightly reconciliation

Prints one JSON line: the seconds of each part and the process's peak RSS in MB.
Validation is timed in three parts: `gx_startup` (importing GX and building its
context and suites, once per process; a whole run overlaps it with the
backfills), `measure` (the reads the database answers) and `gate` (GX judging
this run and writing its Data Docs). A run's validation is measure + gate.
A whole run is timed as one (`seconds`), with the run record's own timings
beside it (`breakdown`) and what it did (`linked`, `drift_found`, what is left
unlinked), so the bench can check that the timed work was done.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pymongo import monitoring
from pymongo.database import Database

from linkage.core.app_schema import LINK_FIELDS, UNSET_VALUES
from linkage.core.models import RunKind
from linkage.core.settings import Settings
from linkage.run.lifecycle import start_run
from linkage.run.params import MigrationParams
from linkage.run.session import Linkage
from linkage.stages.apply import apply_planned
from linkage.stages.backfill import run_step
from linkage.stages.executor import migrate, undo_run
from linkage.validation.gate import gate, validate
from linkage.validation.metrics import measure

DANGLING_ORDERS = "order_refs_dangling"


class RoundTrips(monitoring.CommandListener):
    """Commands this process sent: each is one round trip (pymongo sends one command at a time on a
    connection), so their count times a network's latency is what that network adds to the work."""

    def __init__(self) -> None:
        self.count = 0

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.count += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


ROUND_TRIPS = RoundTrips()


def counted(fn: Callable[[], Any]) -> tuple[float, int, Any]:
    """Seconds, round trips and result of fn."""
    before = ROUND_TRIPS.count
    seconds, result = timed(fn)
    return seconds, ROUND_TRIPS.count - before, result


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def link_step(lk: Linkage, run_id: str, step: str) -> dict[str, dict[str, int]]:
    """One step's backfill as a run does it: its passes plan into the journal, then the apply stage writes."""
    run_step(lk, run_id, step)
    return apply_planned(lk, run_id)


def bench_settings(uri: str, db: str, work: Path) -> Settings:
    """A benchmark's settings: no app writes beside its runs, so they say so (`LINKAGE_APP_QUIET`), and run
    on a server that loses concurrent updates (FerretDB) too; the preflight's probe still runs and is timed."""
    return Settings(mongo_uri=uri, db=db, home=work, app_quiet=True)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(uri: str, db: str, work: Path, *, backfill: bool = True, validation: bool = True) -> dict[str, float]:
    """The order-delivery backfill (then rolled back) and/or validation, each timed on its own."""
    lk = Linkage(bench_settings(uri, db, work))
    params = MigrationParams(steps=["order_delivery"], min_user_coverage=0)
    seconds: dict[str, float] = {}
    linked = lk.db.delivery_statuses.count_documents({"order_id": {"$gt": ""}})
    if backfill:
        run_id, _ = start_run(lk, params, "bench", new=True)
        with lk.hold(run_id):
            seconds["backfill"], round_trips, _ = counted(lambda: link_step(lk, run_id, "order_delivery"))
    # what was timed must also have been done: the counts go beside the seconds
    counts = {"linked_before": linked, "linked_after_backfill": lk.db.delivery_statuses.count_documents(
        {"order_id": {"$gt": ""}})}
    if backfill:
        counts["backfill_round_trips"] = round_trips
    if validation:
        seconds["gx_startup"] = timed(gate)[0]
        seconds["measure"], (metrics, _) = timed(lambda: measure(lk.db))
        seconds["gate"] = timed(lambda: validate(metrics, params, lk.settings.docs_dir, db, lk.settings.db))[0]
        counts["dangling_found"] = int(metrics["order_refs_dangling"].value or 0)
    if backfill:
        seconds["rollback"] = timed(lambda: undo_run(lk, run_id))[0]
        counts["linked_after_rollback"] = lk.db.delivery_statuses.count_documents({"order_id": {"$gt": ""}})
    return {**seconds, **counts, "peak_rss_mb": peak_rss_mb()}


def unlinked(db: Database) -> int:
    """Documents whose link field is unset, over the three link fields (0: everything is linked)."""
    return sum(db[name].count_documents({field: {"$in": UNSET_VALUES}}) for name, field in LINK_FIELDS.items())


def whole_run(uri: str, db: str, work: Path, kind: RunKind) -> dict[str, Any]:
    """One `migrate` of both steps with default parameters, as the CLI and the DAGs run it
    (backup, indexes, the steps, validation, the verdict): what an operator waits for."""
    lk = Linkage(bench_settings(uri, db, work))
    seconds, round_trips, report = counted(
        lambda: migrate(lk, MigrationParams(), "bench", kind=kind, new=True))
    record = lk.record(report.run_id)
    breakdown = {**{name: t for name, t in record.timings.items() if not name.startswith("backfill_")},
                 **{step: part.seconds for step, part in record.steps.items()}}
    return {"seconds": seconds, "round_trips": round_trips, "breakdown": breakdown, "state": report.state.value,
            "linked": {step: counts["linked"] for step, counts in report.steps.items()},
            "drift_found": report.drift.total if report.drift else 0,
            "dangling_found": report.drift.by_expectation.get(DANGLING_ORDERS, 0) if report.drift else 0,
            "unlinked_after": unlinked(lk.db), "peak_rss_mb": peak_rss_mb()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("uri")
    parser.add_argument("db")
    parser.add_argument("work", type=Path)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--validate", action="store_true", help="only measure and judge (the data is already linked)")
    mode.add_argument("--backfill-only", action="store_true", help="the backfill and its rollback, no validation")
    mode.add_argument("--migrate", action="store_true", help="one whole migration of both steps")
    mode.add_argument("--reconcile", action="store_true", help="one whole nightly reconciliation")
    args = parser.parse_args()
    monitoring.register(ROUND_TRIPS)  # before any client is made: it counts every command of this process
    if args.migrate or args.reconcile:
        result: dict[str, Any] = whole_run(args.uri, args.db, args.work,
                                           RunKind.MIGRATE if args.migrate else RunKind.RECONCILE)
    else:
        result = run(args.uri, args.db, args.work, backfill=not args.validate, validation=not args.backfill_only)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
