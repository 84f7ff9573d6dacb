"""The engine's side of a benchmark, run in a fresh process so its peak RSS is the engine's own.

    python -m bench.engine_process URI DB WORKDIR            # backfill, validation, rollback
    python -m bench.engine_process URI DB WORKDIR --validate # validation only (linked data)

Prints one JSON line: the seconds of each part and the process's peak RSS in MB.
Validation is timed in two parts: `measure` (the reads the database answers,
what the bare projected read is compared with) and `gate` (GX judging them).
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from linkage import pipeline
from linkage.models import MigrationParams, Step
from linkage.settings import Settings
from linkage.validation.gate import validate
from linkage.validation.metrics import measure


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(uri: str, db: str, work: Path, *, validate_only: bool = False) -> dict[str, float]:
    lk = pipeline.Linkage(Settings(mongo_uri=uri, db=db, home=work))
    params = MigrationParams(steps=[Step.ORDER_DELIVERY], min_user_coverage=0)
    seconds: dict[str, float] = {}
    linked = lk.db.delivery_statuses.count_documents({"order_id": {"$gt": ""}})
    if not validate_only:
        run_id, _ = pipeline.start_run(lk, params, "bench", new=True)
        seconds["backfill"] = timed(lambda: pipeline.run_step(lk, run_id, Step.ORDER_DELIVERY, pipeline.no_guard))[0]
    # what was timed must also have been done: the counts go beside the seconds
    counts = {"linked_before": linked, "linked_after_backfill": lk.db.delivery_statuses.count_documents(
        {"order_id": {"$gt": ""}})}
    seconds["measure"], (metrics, _) = timed(lambda: measure(lk.db))
    seconds["gate"] = timed(lambda: validate(metrics, params, lk.settings.docs_dir, db))[0]
    counts["dangling_found"] = int(metrics["order_refs_dangling"].value or 0)
    if not validate_only:
        seconds["rollback"] = timed(lambda: pipeline.rollback(lk, run_id))[0]
        counts["linked_after_rollback"] = lk.db.delivery_statuses.count_documents({"order_id": {"$gt": ""}})
    return {**seconds, **counts, "peak_rss_mb": peak_rss_mb()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("uri")
    parser.add_argument("db")
    parser.add_argument("work", type=Path)
    parser.add_argument("--validate", action="store_true", help="only measure and judge (the data is already linked)")
    args = parser.parse_args()
    print(json.dumps(run(args.uri, args.db, args.work, validate_only=args.validate)))


if __name__ == "__main__":
    main()
