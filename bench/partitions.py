"""One backfill stage with 1 partition and with 4, through a network (issue 30): what partitions buy.

A partition is a range of the walk key worked by a task of its own (a thread here, a mapped task on any
worker in Airflow): it plans its range into the journal, then writes it. Straight to a server on the same
host, each round trip costs microseconds and the partitions mostly share the CPU of this process; over a
network, a round trip waits for the wire, and partitions overlap their waits. So the comparison runs
through `bench.proxy.LatencyProxy`, which delays every message as a 1 ms network does, and times the
order-delivery stage as the CLI's runner carries it out (plan every partition at once, then write every
partition at once), from the same data, each rolled back after (untimed).

    python -m bench.partitions [--size N] [--mongo-uri URI]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import tempfile
import time
from pathlib import Path
from typing import Any, NamedTuple

from pymongo import MongoClient

from bench import data
from bench.engine_process import bench_settings
from bench.proxy import LatencyProxy
from linkage.relations import REGISTRY
from linkage.run.lifecycle import start_run
from linkage.run.params import MigrationParams
from linkage.run.session import Linkage
from linkage.stages.apply import write_step
from linkage.stages.backfill import record_step, run_step
from linkage.stages.executor import undo_run
from linkage.stages.indexes import create_indexes

STEP = "order_delivery"
DB = "bench_partitions"
#: the partition counts compared, and the size and batch that give each of 4 partitions several batches
COUNTS, SIZE, BATCH = (1, 4), 10_000, 500


class Timed(NamedTuple):
    seconds: float
    #: this process's CPU seconds over the same span, all its threads: near `seconds` means the client's CPU,
    #: not the network or the server, bounds the stage
    client_cpu: float
    linked: int


def backfill_seconds(lk: Linkage, parts: int) -> Timed:
    """The order-delivery stage of a fresh run with `parts` partitions, planned then written as the runner does
    it; its seconds, this process's CPU seconds and the deliveries it linked. Rolled back after, untimed."""
    run_id, _ = start_run(lk, MigrationParams(steps=[STEP], batch_size=BATCH, partitions=parts), "bench", new=True)
    phases = REGISTRY[STEP].phase_names(lk.record(run_id).kind)
    by = f"{socket.gethostname()}:{os.getpid()}:bench"
    with lk.hold(run_id):
        create_indexes(lk, run_id)
        started, cpu = time.monotonic(), time.process_time()
        run_step(lk, run_id, STEP, phases)
        write_step(lk, run_id, STEP, phases, by)
        seconds, cpu = time.monotonic() - started, time.process_time() - cpu
        linked = record_step(lk, run_id, STEP)["linked"]
    undo_run(lk, run_id)
    return Timed(seconds, cpu, linked)


def over(uri: str, work: Path) -> dict[str, Any]:
    """1 partition, then 4, over one route to the server."""
    lk = Linkage(bench_settings(uri, DB, work))
    try:
        lk.ensure_bookkeeping()
        one, four = (backfill_seconds(lk, parts) for parts in COUNTS)
    finally:
        lk.close()
    return {"seconds": {"1_partition": round(one.seconds, 2), "4_partitions": round(four.seconds, 2)},
            "client_cpu_seconds": {"1_partition": round(one.client_cpu, 2), "4_partitions": round(four.client_cpu, 2)},
            "linked": {"1_partition": one.linked, "4_partitions": four.linked},
            "partitions_4_vs_1": round(one.seconds / four.seconds, 3)}


def partition_speedup(uri: str, work: Path, size: int = SIZE, delay_ms: float = 1.0) -> dict[str, Any]:
    """1 partition against 4, through a `delay_ms` network and straight to the server: seconds, the client's CPU
    seconds, linked counts (equal, or the comparison is void), the speed-up, and its ceiling on this server."""
    client: MongoClient = MongoClient(uri)
    try:
        data.deliveries(client[DB], size)
        with LatencyProxy(uri, delay_ms) as proxy:
            proxied = over(proxy.uri, work / "proxied")
        direct = over(uri, work / "direct")
        client.drop_database(DB)
    finally:
        client.close()
    return {"documents": size, "batch_size": BATCH, "delay_ms": delay_ms, "cpus": os.cpu_count(),
            **proxied, "without_latency": direct, "ceiling_on_this_server": ceiling(proxied, direct)}


def ceiling(proxied: dict[str, Any], direct: dict[str, Any]) -> float:
    """The most 4 partitions could gain through the network on a server that serialises every request: all of the
    network's share of the 1-partition time (proxied less direct) overlapped four ways, none of the rest."""
    one, alone = proxied["seconds"]["1_partition"], direct["seconds"]["1_partition"]
    network = max(0.0, one - alone)
    return round(one / (alone + network / 4), 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=SIZE)
    parser.add_argument("--mongo-uri", help="a running server (default: the embedded one, started here)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="linkage-bench-partitions-") as scratch:
        from bench.run import server

        with server(args.mongo_uri, Path(scratch)) as uri:
            print(json.dumps(partition_speedup(uri, Path(scratch) / "work", args.size), indent=2))


if __name__ == "__main__":
    main()
