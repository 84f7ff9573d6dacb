"""linkage benchmarks: the engine against what the database can do, side by side in one run.

    python -m bench.run --sizes 5000,50000       # make bench-quick
    python -m bench.run --sizes 100000,1000000   # make bench
    python -m bench.run --mongo-uri mongodb://host:27017/   # against a real server
    python -m bench.run --server ferretdb        # started here, like nx (make bench-quick BENCH_SERVER=ferretdb)
    python -m bench.run --reconcile-only 50000,1000000 --out bench/results/reconcile.json   # make bench-reconcile

Absolute times on shared machines are noise; the ratios are measured in the same
run on the same server and are what the targets speak of. Results: a table on
stdout and bench/results/latest.json.

The engine's backfill, validation and rollback at each size run in a fresh
process (`bench.engine_process`), so the peak RSS reported is the engine's alone
and the largest size is backfilled once by each of them.

Two runs come closer to production than the rest:
- the latency run: the small size's backfill, raw ceiling and naive script,
  straight to the server and then through `bench.proxy`, a local proxy adding
  1 ms to each round trip (a typical in-region network to a managed MongoDB);
- the nightly reconciliation: the large database migrated whole, a night of ~1%
  app drift planted (`bench.data.drift`), then the reconcile, against a bare read
  of the link fields and against the full migrate; and the same reconcile at
  several drift levels on the small size, for how its cost grows with the drift.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pymongo import MongoClient, UpdateOne
from pymongo.database import Database

from bench import data
from bench.engine_process import bench_settings, link_step, timed
from bench.partitions import partition_speedup
from bench.proxy import LatencyProxy
from linkage.core.settings import DEFAULT_WRITE_CHUNK
from linkage.dev import ferretdb
from linkage.dev.server import free_port
from linkage.mongo import bulk
from linkage.relations import REGISTRY
from linkage.run.lifecycle import start_run
from linkage.run.params import MigrationParams
from linkage.run.session import Linkage
from linkage.stages.executor import undo_run
from linkage.stages.indexes import create_indexes

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "latest.json"
BATCH = 1000
NAIVE_SAMPLE = 100
SMALL_DB, LARGE_DB = "bench_small", "bench_large"
#: the night planted on the large database, and the levels the small size is reconciled at (fractions)
NIGHTLY_DRIFT, DRIFT_LEVELS = 0.01, (0.0, 0.001, 0.01, 0.05)
DRIFT_DB = "bench_drift"  # one level at a time, dropped after each
HOT_DB, SPREAD_DB = "bench_hot", "bench_spread"  # bench.hotkey's
BENCH_DBS = (SMALL_DB, LARGE_DB, DRIFT_DB, HOT_DB, SPREAD_DB)
#: the servers a run can start itself (`ferretdb.by_name`), as the results name them
SERVERS = {"nx": "nx-27017 0.8.1 (embedded, SQLite)", "ferretdb": f"{ferretdb.FerretDBServer.label} (SQLite)"}
#: what the latency run's proxy adds to each request -> response round trip
LATENCY_MS = 1.0


@contextmanager
def server(uri: str | None, tmp: Path, name: str = "nx") -> Iterator[str]:
    """The given server (its bench databases dropped before and after), or one started for the run by its
    name (`ferretdb.by_name`: nx, the embedded default, or FerretDB)."""
    if uri is None:
        with ferretdb.by_name()[name](free_port(), tmp / "db") as started:
            yield started.uri
        return
    client: MongoClient = MongoClient(uri)
    try:
        for name in BENCH_DBS:
            client.drop_database(name)
        yield uri
    finally:
        for name in BENCH_DBS:
            client.drop_database(name)
        client.close()


def raw_ceiling(db: Database, collection: str, field: str, limit: int) -> float:
    """docs/s of plain bulk `$set` by `_id` in batches, no reads, no journal (then undone, untimed); sent in
    commands of the engine's `LINKAGE_WRITE_CHUNK` statements, as every bulk write is (FerretDB hangs on
    a command of 100: docs/CONTRACT.md §8)."""
    ids = [d["_id"] for d in db[collection].find({}, {"_id": 1}).sort("_id", 1).limit(limit)]
    seconds = 0.0
    for start in range(0, len(ids), BATCH):
        batch = ids[start:start + BATCH]
        ops = [UpdateOne({"_id": oid}, {"$set": {field: f"raw-{oid}"}}) for oid in batch]
        seconds += timed(lambda ops=ops: bulk.write(db[collection], ops, DEFAULT_WRITE_CHUNK))[0]
        db[collection].update_many({"_id": {"$in": batch}}, {"$unset": {field: ""}})
    return len(ids) / seconds


def bracketed(before: float, after: float) -> float:
    """The raw ceiling (docs/s) measured before and after the engine's run, as one: the mean of their seconds.
    The embedded server fsyncs every command (docs/performance.md), so on a shared machine a command's cost
    follows the disk's other users; measured on one side only, a change between the two lands on one side of
    every ratio (rollback ran 0.66x to 4.4x "raw" on the same code, docs/performance.md)."""
    return 2 / (1 / before + 1 / after)


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


def projected_read(db: Database, fields: dict[str, dict[str, int]]) -> float:
    """Seconds to read the given fields of every document of the given collections, in
    batches of the engine's size (nx pages a default-sized cursor ever more slowly:
    37 s vs 20 s for 400,000 documents, so anything else would flatter the engine)."""
    return timed(lambda: [sum(1 for _ in db[name].find({}, p).batch_size(BATCH)) for name, p in fields.items()])[0]


# what validation reads, and what any backfill must read at least once (its input and the candidates)
VALIDATION_FIELDS = {"delivery_statuses": {"order_id": 1}, "users": {"customer_v2_id": 1, "id": 1},
                     "customers_v2": {"user_id": 1, "id": 1}, "orders": {"id": 1}}
BACKFILL_INPUT_FIELDS = {"delivery_statuses": {"customer_id": 1, "delivery_date": 1, "order_id": 1},
                         "orders": {"id": 1, "customer_id": 1, "delivery_date": 1, "status": 1}}


def engine_step(lk: Linkage, step: str) -> tuple[float, str]:
    """Seconds for one backfill step (journal and checkpoints included) and its run id."""
    params = MigrationParams(steps=[step], batch_size=BATCH)
    run_id, _ = start_run(lk, params, "bench", new=True)
    with lk.hold(run_id):
        return timed(lambda: link_step(lk, run_id, step))[0], run_id


def engine_process(uri: str, db_name: str, work: Path, *extra: str) -> dict[str, Any]:
    """`bench.engine_process` in a fresh interpreter; its JSON result."""
    out = subprocess.run([sys.executable, "-m", "bench.engine_process", uri, db_name, str(work), *extra],
                         capture_output=True, text=True, cwd=ROOT, check=False)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def create_link_indexes(lk: Linkage) -> None:
    """The engine's indexes, untimed (a run records them; this one is only for that). The run names the steps
    whose collections the database holds (the small one has delivery statuses and orders only)."""
    held = set(lk.db.list_collection_names())
    steps = [step for step, spec in REGISTRY.items() if set(spec.reads) <= held]
    run_id, _ = start_run(lk, MigrationParams(steps=steps), "bench", new=True)
    with lk.hold(run_id):
        create_indexes(lk, run_id)


# -- what a whole run must have done, checked beside its seconds ----------------------------------------------

#: the parts of a whole run's result that say what it did (bench.engine_process.whole_run)
OUTCOME = ("state", "linked", "drift_found", "dangling_found", "unlinked_after")


def expected_outcome(deliveries: int, accounts: int, deleted_orders: int = 0) -> dict[str, Any]:
    """A run that linked exactly these deliveries and account pairs, found exactly the orders deleted under
    linked deliveries as drift, kept its work and left nothing unlinked."""
    return {"state": "succeeded", "linked": {"order_delivery": deliveries, "user_customer": accounts},
            "drift_found": deleted_orders, "dangling_found": deleted_orders, "unlinked_after": 0}


def outcome(result: dict[str, Any]) -> dict[str, Any]:
    return {key: result[key] for key in OUTCOME}


def expected_night(planted: data.Drift) -> dict[str, Any]:
    """A reconcile of exactly `planted`: its new deliveries and pairs linked, its one-sided pairs repaired."""
    repaired = planted.one_sided_from_users + planted.one_sided_from_customers
    return expected_outcome(planted.deliveries, planted.pairs + repaired, planted.deleted_orders)


# -- the nightly reconciliation (issue 11) ---------------------------------------------------------------------

def reconcile_night(db: Database, uri: str, work: Path, fraction: float, deliveries: int) -> dict[str, Any]:
    """Plant a night of app drift in a linked database, read its link fields bare (the comparison, on the
    very data the reconcile meets), then time the reconcile in a fresh process."""
    pairs = deliveries // 4
    planted = data.drift(db, data.Drift.of(fraction, deliveries, pairs), deliveries, pairs)
    read_s = projected_read(db, VALIDATION_FIELDS)
    night = engine_process(uri, db.name, work, "--reconcile")
    return {"drift_fraction": fraction, "planted": planted.as_dict(), "seconds": round(night["seconds"], 2),
            "round_trips": night["round_trips"],
            "link_field_read": round(read_s, 3), "vs_link_field_read": round(night["seconds"] / read_s, 2),
            "breakdown": night["breakdown"], "peak_rss_mb": round(night["peak_rss_mb"], 1),
            "outcome": outcome(night), "expected": expected_night(planted)}


def drift_levels(given: str) -> tuple[float, ...]:
    """The drift levels to reconcile at (fractions, comma-separated), always with the nightly one, so the
    reconcile's growth with the database's size is measured at the same drift."""
    return tuple(sorted({float(level) for level in given.split(",") if level.strip()} | {NIGHTLY_DRIFT}))


def linked_night(client: MongoClient, lk: Linkage, size: int, work: Path, fraction: float) -> dict[str, Any]:
    """One reconcile at `fraction` drift on a fresh linked database of `size` deliveries (dropped after)."""
    db = client[DRIFT_DB]
    data.deliveries(db, size, linked=True)
    data.accounts(db, size // 4, linked=True)
    create_link_indexes(Linkage(lk.settings.model_copy(update={"db": DRIFT_DB}), client))
    try:
        return reconcile_night(db, lk.settings.mongo_uri, work, fraction, size)
    finally:
        client.drop_database(DRIFT_DB)


def drift_scaling(client: MongoClient, lk: Linkage, size: int, tmp: Path,
                  levels: tuple[float, ...]) -> dict[str, dict[str, Any]]:
    """The same reconcile at each drift level, each on a fresh linked database of `size` deliveries (so the
    drift is the only difference); keyed by the level as a percentage."""
    return {f"{fraction:.1%}": linked_night(client, lk, size, tmp / f"drift-{fraction}", fraction)
            for fraction in levels}


def reconcile_sizes(sizes: list[int], uri: str | None, name: str) -> dict[str, Any]:
    """Only the nightly reconcile (issue 20's measure): at each size, a fresh linked database, a night of
    NIGHTLY_DRIFT, the reconcile against a bare read of its link fields, with the run's own breakdown."""
    with tempfile.TemporaryDirectory(prefix="linkage-bench-") as scratch, \
            server(uri, Path(scratch), name) as server_uri:
        client: MongoClient = MongoClient(server_uri)
        lk = Linkage(bench_settings(server_uri, DRIFT_DB, Path(scratch) / "linkage"), client)
        nights = {f"{size:,}": linked_night(client, lk, size, Path(scratch) / f"night-{size}", NIGHTLY_DRIFT)
                  for size in sizes}
        client.close()
    return {"drift_fraction": NIGHTLY_DRIFT, "target": "<= 2.0x the link-field read",
            "vs_link_field_read": {size: night["vs_link_field_read"] for size, night in nights.items()},
            "nights": nights, "machine": machine(uri, name)}


def machine(uri: str | None, name: str) -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
            "server": "given by --mongo-uri" if uri else SERVERS[name]}


# -- the latency run (issue 14) --------------------------------------------------------------------------------

def over_route(uri: str, size: int, work: Path) -> dict[str, Any]:
    """The small database's raw ceiling, naive script and backfill (fresh process, rolled back, no
    validation) over one route to the server."""
    client: MongoClient = MongoClient(uri)
    try:
        raw = raw_ceiling(client[SMALL_DB], "delivery_statuses", "order_id", min(size, 50_000))
        naive = naive_per_document(client[SMALL_DB], min(size, NAIVE_SAMPLE))
    finally:
        client.close()
    engine = engine_process(uri, SMALL_DB, work, "--backfill-only")
    rate = size / engine["backfill"]
    return {"backfill_vs_raw": round(rate / raw, 3), "backfill_vs_naive": round(rate * naive, 1),
            "rates": {"backfill_docs_s": round(rate), "raw_ceiling_docs_s": round(raw),
                      "naive_docs_s": round(1 / naive)},
            "seconds": {"backfill": round(engine["backfill"], 2), "rollback": round(engine["rollback"], 2)},
            "backfill_round_trips": engine["backfill_round_trips"],
            "linked": engine["linked_after_backfill"], "restored": engine["linked_after_rollback"]}


def latency_run(uri: str, size: int, tmp: Path) -> dict[str, Any]:
    """The same measures straight to the server and then through a proxy adding LATENCY_MS to each round
    trip, back to back, so the network is their only difference; ping round trips say what it added."""
    with LatencyProxy(uri, LATENCY_MS) as proxy:
        direct = over_route(uri, size, tmp / "latency-direct")
        proxied = over_route(proxy.uri, size, tmp / "latency-proxied")
    done = {route: {"linked": m.pop("linked"), "restored": m.pop("restored")}
            for route, m in (("direct", direct), ("proxied", proxied))}
    round_trips = proxied["backfill_round_trips"]
    return {"delay_ms": LATENCY_MS, "documents": size,
            "ping_ms": {"direct": round(proxy.direct_ms, 3), "proxied": round(proxy.proxied_ms, 3),
                        "added": round(proxy.added_ms, 3)},
            # what the network must add to the backfill (its round trips times the delay), and what it did add
            "backfill_round_trips_per_1000_docs": round(round_trips * 1000 / size, 1),
            "backfill_network_seconds": {"expected": round(round_trips * proxy.added_ms / 1000, 2),
                                         "measured": round(proxied["seconds"]["backfill"] -
                                                           direct["seconds"]["backfill"], 2)},
            "latency_backfill_vs_raw": proxied.pop("backfill_vs_raw"),
            "latency_backfill_vs_naive": proxied.pop("backfill_vs_naive"), **proxied,
            "without_latency": direct, "done": done}


def validation_rss(sizes: list[int], uri: str | None) -> dict[str, Any]:
    """Peak RSS of a fresh process validating `small` and `large` linked deliveries (issue 4)."""
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="linkage-bench-rss-") as scratch, server(uri, Path(scratch)) as server_uri:
        tmp = Path(scratch)
        client: MongoClient = MongoClient(server_uri)
        for label, name, size in zip(("small", "large"), (SMALL_DB, LARGE_DB), sizes, strict=True):
            data.deliveries(client[name], size, linked=True)
            result[label] = {"documents": size, **engine_process(server_uri, name, tmp / label, "--validate")}
    result["rss_growth"] = round(result["large"]["peak_rss_mb"] / result["small"]["peak_rss_mb"], 3)
    return result


def dag_end_to_end(uri: str, db_name: str, tmp: Path) -> dict[str, float]:
    """`dag.test()` of linkage_migration in a subprocess: seconds per task. The small database holds deliveries
    and orders only, so the run asks for that step (a coverage of no documents fails a run that asks for it)."""
    env = {**os.environ, "AIRFLOW_HOME": str(tmp / "airflow"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"), "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
           "AIRFLOW_CONN_MONGO_DEFAULT": f"mongo://{uri.removeprefix('mongodb://').rstrip('/')}/{db_name}",
           "LINKAGE_HOME": str(tmp / "dag"), "LINKAGE_APP_QUIET": "true", "GX_ANALYTICS_ENABLED": "false"}
    airflow = str(Path(sys.executable).parent / "airflow")
    subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True)
    code = """
import json
from airflow.dag_processing.dagbag import DagBag
run = DagBag().get_dag("linkage_migration").test(run_conf={"steps": ["order_delivery"], "min_order_coverage": 0})
times = {}
for ti in run.get_task_instances():
    if ti.start_date and ti.end_date:
        times[ti.task_id] = times.get(ti.task_id, 0) + (ti.end_date - ti.start_date).total_seconds()
print("RESULT " + json.dumps({"state": str(run.state), "tasks": times}))
"""
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=ROOT, check=False)
    line = next((row for row in out.stdout.splitlines() if row.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(line.removeprefix("RESULT "))


def run(sizes: list[int], *, uri: str | None = None, e2e: bool = True,
        levels: tuple[float, ...] = DRIFT_LEVELS, name: str = "nx") -> dict[str, Any]:
    small, large = sizes
    with tempfile.TemporaryDirectory(prefix="linkage-bench-") as scratch, \
            server(uri, Path(scratch), name) as server_uri:
        tmp = Path(scratch)  # the embedded server's data and every engine process's work: gone afterwards
        client: MongoClient = MongoClient(server_uri)
        db = client[LARGE_DB]
        seed_s = timed(lambda: (data.deliveries(db, large), data.accounts(db, large // 4)))[0]
        lk = Linkage(bench_settings(server_uri, LARGE_DB, tmp / "linkage"), client)
        lk.ensure_bookkeeping()
        create_link_indexes(lk)

        raw_before = raw_ceiling(db, "delivery_statuses", "order_id", min(large, 50_000))
        naive = naive_per_document(db, min(large, NAIVE_SAMPLE))
        input_read_s = projected_read(db, BACKFILL_INPUT_FIELDS)
        engine_large = engine_process(server_uri, LARGE_DB, tmp / "engine-large")
        raw_after = raw_ceiling(db, "delivery_statuses", "order_id", min(large, 50_000))
        raw = bracketed(raw_before, raw_after)
        read_s = projected_read(db, VALIDATION_FIELDS)

        uc_raw_users = raw_ceiling(db, "users", "customer_v2_id", min(large // 4, 25_000))
        uc_raw_customers = raw_ceiling(db, "customers_v2", "user_id", min(large // 4, 25_000))
        uc_raw_pairs = 1 / (1 / uc_raw_users + 1 / uc_raw_customers)
        uc_s, uc_run = engine_step(lk, "user_customer")
        undo_run(lk, uc_run)  # untimed: the full migrate below starts from unlinked data

        # the nightly reconcile at the large size: a full migrate (timed, and it links the database),
        # a night of drift, the reconcile
        migrated = engine_process(server_uri, LARGE_DB, tmp / "migrate-large", "--migrate")
        night = reconcile_night(db, server_uri, tmp / "reconcile-large", NIGHTLY_DRIFT, large)

        # the small database: peak RSS for comparison; then 1 vs 4 partitions, through a network and without
        data.deliveries(client[SMALL_DB], small)
        lk_small = Linkage(lk.settings.model_copy(update={"db": SMALL_DB}), client)
        create_link_indexes(lk_small)  # as on the large database: every backfill runs with the engine's indexes
        raw_small = raw_ceiling(client[SMALL_DB], "delivery_statuses", "order_id", min(small, 50_000))
        engine_small = engine_process(server_uri, SMALL_DB, tmp / "engine-small")
        partitions = partition_speedup(server_uri, tmp / "partitions", size=2 * small)
        latency = latency_run(server_uri, small, tmp)
        scaling = drift_scaling(client, lk, small, tmp, levels)
        e2e_result = dag_end_to_end(server_uri, SMALL_DB, tmp) if e2e else None
        client.close()

    backfill_s, rollback_s = engine_large["backfill"], engine_large["rollback"]
    validation_s = engine_large["measure"] + engine_large["gate"]  # what a run's validate step pays, GX included
    backfill_rate, rollback_rate, uc_rate = large / backfill_s, large / rollback_s, (large // 4) / uc_s
    floor_s = large / raw + input_read_s
    runs, expected = checked_runs(migrated, large, night, scaling)
    latency_done = latency.pop("done")
    return {
        "sizes": {"small": small, "large": large, "user_customer_pairs": large // 4},
        "backfill_vs_raw": round(backfill_rate / raw, 3),
        "backfill_vs_raw_small": round(small / engine_small["backfill"] / raw_small, 3),
        "backfill_vs_naive": round(backfill_rate * naive, 1),
        "user_customer_vs_raw": round(uc_rate / uc_raw_pairs, 3),
        "rollback_vs_raw": round(rollback_rate / raw, 3),
        "validation_vs_read": round(validation_s / read_s, 2),
        "rss_growth": round(engine_large["peak_rss_mb"] / engine_small["peak_rss_mb"], 3),
        "read_write_floor_vs_raw": round((large / raw) / floor_s, 3),
        "backfill_vs_read_write_floor": round(floor_s / backfill_s, 3),
        "rates": {"backfill_docs_s": round(backfill_rate), "raw_ceiling_docs_s": round(raw),
                  "raw_ceiling_before_docs_s": round(raw_before), "raw_ceiling_after_docs_s": round(raw_after),
                  "small_backfill_docs_s": round(small / engine_small["backfill"]),
                  "small_raw_ceiling_docs_s": round(raw_small),
                  "naive_docs_s": round(1 / naive), "user_customer_pairs_s": round(uc_rate),
                  "raw_pairs_s": round(uc_raw_pairs), "rollback_docs_s": round(rollback_rate)},
        "seconds": {"seed": round(seed_s, 1), "backfill": round(backfill_s, 2), "input_read": round(input_read_s, 2),
                    "validation": round(validation_s, 2), "validation_gate": round(engine_large["gate"], 2),
                    "gx_startup": round(engine_large["gx_startup"], 2),
                    "bare_read": round(read_s, 2), "rollback": round(rollback_s, 2), "user_customer": round(uc_s, 2),
                    "small_backfill": round(engine_small["backfill"], 2),
                    "small_rollback": round(engine_small["rollback"], 2),
                    "small_validation": round(engine_small["measure"], 2),
                    "migrate": round(migrated["seconds"], 2), "reconcile": night["seconds"],
                    "link_field_read": night["link_field_read"]},
        "peak_rss_mb": {"small": round(engine_small["peak_rss_mb"], 1), "large": round(engine_large["peak_rss_mb"], 1)},
        **nightly_results(migrated, night, scaling),
        "latency": latency,
        "partitions": partitions,
        "dag_test": e2e_result,
        "checks": {"large_linked": engine_large["linked_after_backfill"], "large_restored": engine_large[
            "linked_after_rollback"], "small_linked": engine_small["linked_after_backfill"],
                   "dangling_found": engine_large["dangling_found"],
                   "latency": latency_done,
                   "runs": runs, "runs_expected": expected},
        "machine": machine(uri, name),
    }


def checked_runs(migrated: dict[str, Any], large: int, night: dict[str, Any],
                 scaling: dict[str, dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """What each whole run did, and what it had to do (equal when the timed work was the work planted)."""
    nights = {"reconcile": night, **{f"reconcile at {level}": level_night for level, level_night in scaling.items()}}
    done = {"migrate": outcome(migrated), **{name: n.pop("outcome") for name, n in nights.items()}}
    expected = {"migrate": expected_outcome(large, large // 4),
                **{name: n.pop("expected") for name, n in nights.items()}}
    return done, expected


def nightly_results(migrated: dict[str, Any], night: dict[str, Any],
                    scaling: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The reconcile's ratios (issue 11) and what is behind them."""
    return {
        "reconcile_vs_link_field_read": night["vs_link_field_read"],
        "reconcile_vs_migrate": round(night["seconds"] / migrated["seconds"], 3),
        "reconcile_drift_scaling": {level: level_night["seconds"] for level, level_night in scaling.items()},
        "reconcile_size_growth": round(night["seconds"] / scaling[f"{NIGHTLY_DRIFT:.1%}"]["seconds"], 2),
        "reconcile": {"large": night, "drift_levels": scaling,
                      "migrate": {"seconds": round(migrated["seconds"], 2), "round_trips": migrated["round_trips"],
                                  "breakdown": migrated["breakdown"],
                                  "peak_rss_mb": round(migrated["peak_rss_mb"], 1)}},
    }


def table(result: dict[str, Any]) -> str:
    r, rates, s, rss = result, result["rates"], result["seconds"], result["peak_rss_mb"]

    def vs(a: str, b: str, unit: str = "docs/s") -> str:
        return f"{rates[a]:,} vs {rates[b]:,} {unit}"

    rows = [
        ("backfill vs raw bulk_write", f"{r['backfill_vs_raw']:.2f}x", vs("backfill_docs_s", "raw_ceiling_docs_s"),
         ">= 0.6"),
        ("  the same at the small size", f"{r['backfill_vs_raw_small']:.2f}x",
         vs("small_backfill_docs_s", "small_raw_ceiling_docs_s"), ">= 0.6"),
        ("  best any backfill can do here", f"{r['read_write_floor_vs_raw']:.2f}x",
         f"raw writes + reading the input once ({s['input_read']}s)", "bound"),
        ("  backfill vs that floor", f"{r['backfill_vs_read_write_floor']:.2f}x", f"{s['backfill']}s", "reported"),
        ("backfill vs naive script", f"{r['backfill_vs_naive']:.0f}x", f"naive {rates['naive_docs_s']:,} docs/s",
         ">= 20"),
        ("user-customer vs raw (2 writes/pair)", f"{r['user_customer_vs_raw']:.2f}x",
         vs("user_customer_pairs_s", "raw_pairs_s", "pairs/s"), ">= 0.6"),
        ("rollback vs raw", f"{r['rollback_vs_raw']:.2f}x", f"{rates['rollback_docs_s']:,} docs/s", ">= 0.6"),
        ("validation / bare projected read", f"{r['validation_vs_read']:.2f}x",
         f"{s['validation']}s (GX {s['validation_gate']}s of it) vs {s['bare_read']}s", "<= 1.5"),
        ("  GX import and context, once a process", f"{s['gx_startup']:.2f}s", "overlaps the backfills in a run",
         "reported"),
        ("peak RSS large / small", f"{r['rss_growth']:.2f}x", f"{rss['large']} vs {rss['small']} MB", "<= 1.1"),
        *latency_rows(r["latency"]),
        *partition_rows(r["partitions"]),
        *reconcile_rows(r),
    ]
    lines = [f"sizes: {r['sizes']}", f"{'measure':40s} {'ratio':>8s}  {'behind it':48s} target", "-" * 108]
    lines += [f"{a:40s} {b:>8s}  {c:48s} {d}" for a, b, c, d in rows]
    lines.append(drift_line(r["reconcile"]["drift_levels"], r["sizes"]["small"]))
    lines.append(breakdown_line("reconcile at the large size", r["reconcile"]["large"]["breakdown"]))
    lines.append(breakdown_line("full migrate at the large size", r["reconcile"]["migrate"]["breakdown"]))
    lines.append(checks_line(r["checks"]))
    if r.get("dag_test"):
        tasks = r["dag_test"]["tasks"]
        lines.append(f"dag.test() linkage_migration at {r['sizes']['small']:,}: {r['dag_test']['state']}; " +
                     ", ".join(f"{k}={v:.1f}s" for k, v in sorted(tasks.items(), key=lambda kv: -kv[1])[:8]))
    return "\n".join(lines)


def latency_rows(lat: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """The latency run beside the same measures without the proxy, at the same size."""
    rates, without, ping = lat["rates"], lat["without_latency"], lat["ping_ms"]
    network = lat["backfill_network_seconds"]
    return [
        (f"through a {lat['delay_ms']:g} ms network: backfill vs raw", f"{lat['latency_backfill_vs_raw']:.2f}x",
         f"{rates['backfill_docs_s']:,} vs {rates['raw_ceiling_docs_s']:,} docs/s (without: "
         f"{without['backfill_vs_raw']:.2f}x)", "reported"),
        ("  backfill vs naive, through it", f"{lat['latency_backfill_vs_naive']:.0f}x",
         f"naive {rates['naive_docs_s']:,} docs/s (without: {without['backfill_vs_naive']:.0f}x)", ">= 20"),
        ("  ping round trip through the proxy", f"+{ping['added']:.2f}",
         f"ms: {ping['proxied']:.2f} vs {ping['direct']:.2f} ms direct, {lat['documents']:,} docs", "reported"),
        ("  backfill round trips per 1,000 docs", f"{lat['backfill_round_trips_per_1000_docs']:.1f}",
         f"network adds {network['expected']}s by count, {network['measured']}s measured", "reported"),
    ]


def partition_rows(parts: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """4 partitions against 1 (`bench.partitions`): through the network, where their round trips overlap, and
    straight to the server, where the embedded server's one SQLite writer serialises them."""
    proxied, direct = parts["seconds"], parts["without_latency"]["seconds"]
    return [
        (f"4 partitions vs 1, {parts['delay_ms']:g} ms network", f"{parts['partitions_4_vs_1']:.2f}x",
         f"{proxied['4_partitions']}s vs {proxied['1_partition']}s, {parts['documents']:,} docs", ">= 1.6"),
        ("  at most, on a serialising server", f"{parts['ceiling_on_this_server']:.2f}x",
         "the network's share of 1 partition overlapped 4 ways", "bound"),
        ("  the same straight to the server", f"{parts['without_latency']['partitions_4_vs_1']:.2f}x",
         f"{direct['4_partitions']}s vs {direct['1_partition']}s (one writer: see Performance)", "reported"),
    ]


def reconcile_rows(r: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """The nightly reconcile against a bare read of the link fields and a full migrate; its growth."""
    s, large = r["seconds"], r["reconcile"]["large"]
    return [
        (f"reconcile ({large['drift_fraction']:.0%} drift) / link-field read",
         f"{r['reconcile_vs_link_field_read']:.2f}x", f"{s['reconcile']}s vs {s['link_field_read']}s", "<= 2"),
        ("  reconcile vs full migrate", f"{r['reconcile_vs_migrate']:.2f}x", f"{s['reconcile']}s vs {s['migrate']}s",
         "reported"),
        ("  reconcile large / small, same drift", f"{r['reconcile_size_growth']:.2f}x",
         f"{r['sizes']['large'] // r['sizes']['small']}x the documents", "reported"),
    ]


def steps_seconds(breakdown: dict[str, float | None]) -> float:
    """The seconds of a whole run's steps (what the drift drives; the rest grows with the database)."""
    return sum(breakdown.get(step) or 0.0 for step in REGISTRY)


def drift_line(levels: dict[str, dict[str, Any]], size: int) -> str:
    parts = [f"{level} {night['seconds']:.1f}s / {steps_seconds(night['breakdown']):.2f}s"
             for level, night in levels.items()]
    return f"reconcile by drift at {size:,} (whole run / its steps): " + ", ".join(parts)


def breakdown_line(label: str, breakdown: dict[str, float | None]) -> str:
    return f"{label}: " + ", ".join(f"{k}={v:.1f}s" for k, v in breakdown.items() if v is not None)


def checks_line(checks: dict[str, Any]) -> str:
    """Whether every whole run did exactly the work planted for it (else which did not)."""
    wrong = [name for name, done in checks["runs"].items() if done != checks["runs_expected"][name]]
    return ("whole runs did exactly the planted work: " +
            ("yes" if not wrong else "NO: " + ", ".join(wrong) + " (see checks in the JSON)"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="small,large (ten times apart)")
    parser.add_argument("--mongo-uri", help="benchmark this server instead of an embedded one "
                                            f"(its {', '.join(BENCH_DBS)} databases are dropped)")
    parser.add_argument("--server", choices=sorted(SERVERS), default="nx",
                        help="the server started for the run when no --mongo-uri is given")
    parser.add_argument("--no-dag", action="store_true", help="skip the dag.test() end-to-end run")
    parser.add_argument("--drift-levels", default=",".join(map(str, DRIFT_LEVELS)), metavar="F,F,...",
                        help=f"drift fractions the small size is reconciled at ({NIGHTLY_DRIFT} is always one)")
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--validation-rss", metavar="SMALL,LARGE",
                        help="only measure validation's peak RSS on linked deliveries of these sizes")
    parser.add_argument("--reconcile-only", metavar="SIZE,SIZE,...",
                        help="only the nightly reconcile at these sizes (deliveries), 1%% drift each")
    args = parser.parse_args()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    if args.reconcile_only:
        nights = reconcile_sizes([int(s) for s in args.reconcile_only.split(",")], args.mongo_uri, args.server)
        Path(args.out).write_text(json.dumps(nights, indent=2))
        for size, night in nights["nights"].items():
            print(f"reconcile at {size} deliveries: {night['vs_link_field_read']:.2f}x the link-field read "
                  f"({night['seconds']}s vs {night['link_field_read']}s); "
                  + breakdown_line("breakdown", night["breakdown"]))
        print(f"\nwritten: {args.out}")
        return
    if args.validation_rss:
        rss = validation_rss([int(s) for s in args.validation_rss.split(",")], args.mongo_uri)
        Path(args.out).write_text(json.dumps(rss, indent=2))
        print(json.dumps(rss, indent=2))
        return
    result = run([int(s) for s in args.sizes.split(",")], uri=args.mongo_uri, e2e=not args.no_dag,
                 levels=drift_levels(args.drift_levels), name=args.server)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(table(result))
    print(f"\nwritten: {args.out}")


if __name__ == "__main__":
    main()
