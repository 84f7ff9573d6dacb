"""linkage benchmarks: the engine against what the database can do, side by side in one run.

    python -m bench.run --sizes 5000,50000       # make bench-quick
    python -m bench.run --sizes 100000,1000000   # make bench

Absolute times on shared machines are noise; the ratios are measured in the same
run on the same server and are what the targets speak of. Results: a table on
stdout and bench/results/latest.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pymongo import MongoClient, UpdateOne
from pymongo.database import Database

from bench import data
from linkage import pipeline
from linkage.models import MigrationParams, Step
from linkage.server import EmbeddedServer, free_port
from linkage.settings import Settings
from linkage.validation.metrics import measure

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "latest.json"
BATCH = 1000


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def raw_ceiling(db: Database, collection: str, field: str, limit: int) -> float:
    """docs/s of plain bulk `$set` by `_id` in batches, no reads, no journal (then undone, untimed)."""
    ids = [d["_id"] for d in db[collection].find({}, {"_id": 1}).sort("_id", 1).limit(limit)]
    seconds = 0.0
    for start in range(0, len(ids), BATCH):
        batch = ids[start:start + BATCH]
        ops = [UpdateOne({"_id": oid}, {"$set": {field: f"raw-{oid}"}}) for oid in batch]
        seconds += timed(lambda: db[collection].bulk_write(ops, ordered=False))[0]
        db[collection].update_many({"_id": {"$in": batch}}, {"$unset": {field: ""}})
    return len(ids) / seconds


def naive_per_document(db: Database, limit: int) -> float:
    """Seconds per document of the original script: one find_one and one update_one each."""
    docs = list(db.delivery_statuses.find({}, {"customer_id": 1, "delivery_date": 1}).sort("_id", 1).limit(limit))
    def run() -> None:
        for ds in docs:
            order = db.orders.find_one({"customer_id": ds["customer_id"], "delivery_date": ds["delivery_date"],
                                        "status": {"$ne": "cancelled"}}, {"id": 1})
            db.delivery_statuses.update_one({"_id": ds["_id"]}, {"$set": {"order_id": order["id"]}})
    seconds = timed(run)[0]
    db.delivery_statuses.update_many({"_id": {"$in": [d["_id"] for d in docs]}}, {"$unset": {"order_id": ""}})
    return seconds / len(docs)


def engine_step(lk: pipeline.Linkage, step: Step, parts: int = 1) -> tuple[float, str]:
    """Seconds for one backfill step (journal and checkpoints included) and its run id."""
    run_id, _ = pipeline.start_run(lk, MigrationParams(steps=[step], batch_size=BATCH, partitions=parts), "bench", new=True)
    guard = lambda: None  # noqa: E731
    if parts == 1:
        return timed(lambda: pipeline.run_step(lk, run_id, step, guard))[0], run_id
    def run_parallel() -> None:
        for phase in pipeline.step_phases(step):
            cut = pipeline.partitions(lk, run_id, step, phase, parts)
            threads = [threading.Thread(target=pipeline.run_phase, args=(lk, run_id, step, phase, p, guard)) for p in cut]
            [t.start() for t in threads]
            [t.join() for t in threads]
    return timed(run_parallel)[0], run_id


def bare_read(db: Database) -> float:
    fields = {"delivery_statuses": {"order_id": 1}, "users": {"customer_v2_id": 1, "id": 1},
              "customers_v2": {"user_id": 1, "id": 1}, "orders": {"id": 1}}
    return timed(lambda: [sum(1 for _ in db[name].find({}, p)) for name, p in fields.items()])[0]


def peak_rss_subprocess(uri: str, db_name: str, tmp: Path) -> float:
    """Peak RSS (MB) of a fresh process that runs the order-delivery backfill and validation."""
    code = f"""
import resource, json
from linkage import pipeline
from linkage.models import MigrationParams, Step
from linkage.settings import Settings
lk = pipeline.Linkage(Settings(mongo_uri={uri!r}, db={db_name!r}, backup_dir={str(tmp / 'b')!r}, docs_dir={str(tmp / 'gx')!r}))
run_id, _ = pipeline.start_run(lk, MigrationParams(steps=[Step.ORDER_DELIVERY], min_user_coverage=0), "bench", new=True)
pipeline.run_step(lk, run_id, Step.ORDER_DELIVERY, lambda: None)
pipeline.validate_run(lk, run_id)
pipeline.rollback(lk, run_id)
print(json.dumps(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return float(out.stdout.strip().splitlines()[-1])


def validation_rss(sizes: list[int]) -> dict[str, Any]:
    """Peak RSS of a fresh process validating `small` and `large` linked deliveries (issue 4)."""
    code = """
import json, resource, sys, time
from pymongo import MongoClient
from linkage.models import MigrationParams
from linkage.reviews import ReviewQueue
from linkage.validation import validate
from linkage.validation.metrics import measure
uri, name, docs = sys.argv[1:4]
db = MongoClient(uri)[name]
started = time.perf_counter()
outcome = validate(measure(db, ReviewQueue(db.linkage_review), None), MigrationParams(min_user_coverage=0), docs, name)
print(json.dumps({"seconds": time.perf_counter() - started, "success": outcome.success,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""
    tmp = Path(tempfile.mkdtemp(prefix="linkage-bench-rss-"))
    result: dict[str, Any] = {}
    with EmbeddedServer(free_port(), tmp / "db") as server:
        client: MongoClient = MongoClient(server.uri)
        for label, size in zip(("small", "large"), sizes):
            data.deliveries(client[label], size, linked=True)
            out = subprocess.run([sys.executable, "-c", code, server.uri, label, str(tmp / "gx")], capture_output=True,
                                 text=True, check=True, cwd=ROOT)
            result[label] = {"documents": size, **json.loads(out.stdout.strip().splitlines()[-1])}
    result["rss_growth"] = round(result["large"]["peak_rss_mb"] / result["small"]["peak_rss_mb"], 3)
    return result


def dag_end_to_end(uri: str, db_name: str, tmp: Path) -> dict[str, float]:
    """`dag.test()` of linkage_migration in a subprocess: seconds per task."""
    env = {**os.environ, "AIRFLOW_HOME": str(tmp / "airflow"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"), "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
           "AIRFLOW_CONN_MONGO_DEFAULT": f"mongo://{uri.removeprefix('mongodb://').rstrip('/')}/{db_name}",
           "LINKAGE_BACKUP_DIR": str(tmp / "dag-b"), "LINKAGE_DOCS_DIR": str(tmp / "dag-gx"), "GX_ANALYTICS_ENABLED": "false",
           "PYTHONPATH": str(ROOT / "plugins")}
    subprocess.run([str(Path(sys.executable).parent / "airflow"), "db", "migrate"], env=env, check=True, capture_output=True)
    code = """
import json
from airflow.dag_processing.dagbag import DagBag
run = DagBag().get_dag("linkage_migration").test(run_conf={"min_user_coverage": 0, "min_order_coverage": 0})
times = {}
for ti in run.get_task_instances():
    if ti.start_date and ti.end_date:
        times[ti.task_id] = times.get(ti.task_id, 0) + (ti.end_date - ti.start_date).total_seconds()
print("RESULT " + json.dumps({"state": str(run.state), "tasks": times}))
"""
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=ROOT)
    line = next((l for l in out.stdout.splitlines() if l.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(line.removeprefix("RESULT "))


def run(sizes: list[int], *, e2e: bool = True) -> dict[str, Any]:
    small, large = sizes
    tmp = Path(tempfile.mkdtemp(prefix="linkage-bench-"))
    with EmbeddedServer(free_port(), tmp / "db") as server:
        client: MongoClient = MongoClient(server.uri)
        settings = Settings(mongo_uri=server.uri, db="bench_large", backup_dir=tmp / "backups", docs_dir=tmp / "gx")
        db = client[settings.db]
        seed_s = timed(lambda: (data.deliveries(db, large), data.accounts(db, large // 4)))[0]
        lk = pipeline.Linkage(settings, client)
        lk.ensure_bookkeeping()
        pipeline.create_indexes(lk, pipeline.start_run(lk, MigrationParams(), "bench", new=True)[0])

        raw = raw_ceiling(db, "delivery_statuses", "order_id", min(large, 50_000))
        naive = naive_per_document(db, min(large, 100))
        backfill_s, od_run = engine_step(lk, Step.ORDER_DELIVERY)
        validation_s = timed(lambda: measure(db, lk.reviews, None))[0]
        read_s = bare_read(db)
        rollback_s = timed(lambda: pipeline.rollback(lk, od_run))[0]
        parallel_s, par_run = engine_step(lk, Step.ORDER_DELIVERY, parts=2)
        pipeline.rollback(lk, par_run)

        uc_raw_users = raw_ceiling(db, "users", "customer_v2_id", min(large // 4, 25_000))
        uc_raw_customers = raw_ceiling(db, "customers_v2", "user_id", min(large // 4, 25_000))
        uc_raw_pairs = 1 / (1 / uc_raw_users + 1 / uc_raw_customers)
        uc_s, _ = engine_step(lk, Step.USER_CUSTOMER)

        small_db = "bench_small"
        data.deliveries(client[small_db], small)
        rss_small = peak_rss_subprocess(server.uri, small_db, tmp / "rss-small")
        rss_large = peak_rss_subprocess(server.uri, settings.db, tmp / "rss-large")
        e2e_result = dag_end_to_end(server.uri, small_db, tmp) if e2e else None
        client.close()

    backfill_rate, rollback_rate, uc_rate = large / backfill_s, large / rollback_s, (large // 4) / uc_s
    return {
        "sizes": {"small": small, "large": large, "user_customer_pairs": large // 4},
        "backfill_vs_raw": round(backfill_rate / raw, 3),
        "backfill_vs_naive": round(backfill_rate * naive, 1),
        "user_customer_vs_raw": round(uc_rate / uc_raw_pairs, 3),
        "rollback_vs_raw": round(rollback_rate / raw, 3),
        "validation_vs_read": round(validation_s / read_s, 2),
        "rss_growth": round(rss_large / rss_small, 3),
        "parallel_2_vs_1": round(backfill_s / parallel_s, 3),
        "rates": {"backfill_docs_s": round(backfill_rate), "raw_ceiling_docs_s": round(raw),
                  "naive_docs_s": round(1 / naive), "user_customer_pairs_s": round(uc_rate),
                  "raw_pairs_s": round(uc_raw_pairs), "rollback_docs_s": round(rollback_rate)},
        "seconds": {"seed": round(seed_s, 1), "backfill": round(backfill_s, 2), "parallel_backfill_2": round(parallel_s, 2),
                    "validation": round(validation_s, 2), "bare_read": round(read_s, 2), "rollback": round(rollback_s, 2),
                    "user_customer": round(uc_s, 2)},
        "peak_rss_mb": {"small": round(rss_small, 1), "large": round(rss_large, 1)},
        "dag_test": e2e_result,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "server": "nx-27017 0.8.1 (embedded, SQLite)"},
    }


def table(result: dict[str, Any]) -> str:
    r, rates = result, result["rates"]
    rows = [
        ("backfill vs raw bulk_write", f"{r['backfill_vs_raw']:.2f}x", f"{rates['backfill_docs_s']:,} vs {rates['raw_ceiling_docs_s']:,} docs/s", ">= 0.6"),
        ("backfill vs naive script", f"{r['backfill_vs_naive']:.0f}x", f"naive {rates['naive_docs_s']:,} docs/s", ">= 20"),
        ("user-customer vs raw (2 writes/pair)", f"{r['user_customer_vs_raw']:.2f}x", f"{rates['user_customer_pairs_s']:,} vs {rates['raw_pairs_s']:,} pairs/s", ">= 0.6"),
        ("rollback vs raw", f"{r['rollback_vs_raw']:.2f}x", f"{rates['rollback_docs_s']:,} docs/s", ">= 0.6"),
        ("validation / bare projected read", f"{r['validation_vs_read']:.2f}x", f"{r['seconds']['validation']}s vs {r['seconds']['bare_read']}s", "<= 2"),
        ("peak RSS large / small", f"{r['rss_growth']:.2f}x", f"{r['peak_rss_mb']['large']} vs {r['peak_rss_mb']['small']} MB", "<= 1.1"),
        ("2 partitions vs 1 (speed-up)", f"{r['parallel_2_vs_1']:.2f}x", f"{r['seconds']['parallel_backfill_2']}s vs {r['seconds']['backfill']}s", "reported"),
    ]
    lines = [f"sizes: {r['sizes']}", f"{'measure':40s} {'ratio':>8s}  {'behind it':40s} target", "-" * 100]
    lines += [f"{a:40s} {b:>8s}  {c:40s} {d}" for a, b, c, d in rows]
    if r.get("dag_test"):
        tasks = r["dag_test"]["tasks"]
        lines.append(f"dag.test() linkage_migration at {r['sizes']['small']:,}: {r['dag_test']['state']}; " +
                     ", ".join(f"{k}={v:.1f}s" for k, v in sorted(tasks.items(), key=lambda kv: -kv[1])[:8]))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="small,large (ten times apart)")
    parser.add_argument("--no-dag", action="store_true", help="skip the dag.test() end-to-end run")
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--validation-rss", metavar="SMALL,LARGE",
                        help="only measure validation's peak RSS on linked deliveries of these sizes")
    args = parser.parse_args()
    if args.validation_rss:
        rss = validation_rss([int(s) for s in args.validation_rss.split(",")])
        Path(args.out).write_text(json.dumps(rss, indent=2))
        print(json.dumps(rss, indent=2))
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    result = run(sizes, e2e=not args.no_dag)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(table(result))
    print(f"\nwritten: {args.out}")


if __name__ == "__main__":
    main()
