"""Sizing past this machine, on paper (issue 30, point 5): a migration and a night at 10 and 100 million
delivery statuses, with 1, 4 and 16 workers, from the cost per document measured here.

    python -m bench.sizing --measure 5000,20000   # measure the inputs (~4 min), then print the table
    python -m bench.sizing                   # the table from the last measured inputs (bench/results/sizing.json)
    python -m bench.sizing --rtt-ms 0.5 --write-ceiling 100000   # the same under other assumptions

What is measured (on the embedded server, in this process, by command monitoring and /proc): per document of
each phase, the round trips, the write statements sent to the app's collections, the majority-acknowledged
bookkeeping writes (journal, marks, fences), the bytes through the client's sockets and the client's CPU
seconds; and the whole phase's seconds on this machine. The phases: the *write phase* (both backfill steps,
planned, journaled and applied: what partitions spread over workers), the *serial part* of a migration (the
whole migrate less its write phase: backup, validation, verdict; one task each) and a *night* (the nightly
reconcile at 1% drift: a read of the link fields and the drift's writes).

What is assumed (every one a flag, printed with the table; docs/sizing.md says why each):
- `--rtt-ms`: the network round trip to the primary (1 ms, as the latency bench's proxy);
- `--majority-ms`: what a majority-acknowledged, journaled write adds to its round trip (replication to one
  secondary in the same region, and its journal flush);
- `--write-ceiling`: update statements a second the replica set's primary sustains across all clients;
- `--read-ceiling`: documents a second the primary returns to batched cursors across all clients.

The model, and why each assumption: docs/sizing.md.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bson
from pydantic import BaseModel
from pymongo import MongoClient, monitoring

from bench import data
from bench.engine_process import bench_settings, link_step, whole_run
from bench.run import NIGHTLY_DRIFT, ROOT, create_link_indexes, server
from linkage.core.models import RunKind
from linkage.run.lifecycle import start_run
from linkage.run.params import MigrationParams
from linkage.run.session import Linkage
from linkage.stages.executor import undo_run

INPUTS = ROOT / "bench" / "results" / "sizing.json"
DB = "bench_sizing"
SIZES = (10_000_000, 100_000_000)
WORKERS = (1, 4, 16)
#: Percona, "MongoDB 3.2 WiredTiger in iiBench" (2015-12-15): 200 million inserts with one secondary index in
#: 31 min on one bare-metal Xeon E5-2680 with an Intel P3600 SSD, ~107,500 documents/s.
PUBLISHED_INSERTS_S = 200_000_000 / (31 * 60)


class Cost(BaseModel):
    """What one phase cost: whole at a size (`documents`: delivery statuses), or per document, or fixed."""

    documents: int
    seconds: float
    round_trips: float
    app_statements: float
    majority_writes: float
    bytes: float
    client_cpu_s: float
    server_cpu_s: float

    def combine(self, other: Cost, op: Callable[[float, float], float], documents: int) -> Cost:
        return Cost(documents=documents, **{key: op(getattr(self, key), getattr(other, key))
                                            for key in Cost.model_fields if key != "documents"})


class Line(BaseModel):
    """A phase's cost as fixed + per document x documents, fitted through two sizes."""

    fixed: Cost
    per_document: Cost

    @classmethod
    def through(cls, small: Cost, large: Cost) -> Line:
        span = large.documents - small.documents
        slope = large.combine(small, lambda a, b: max(0.0, (a - b) / span), 1)
        fixed = small.combine(slope, lambda a, b: max(0.0, a - b * small.documents), 0)
        return cls(fixed=fixed, per_document=slope)

    def at(self, documents: float) -> Cost:
        return self.fixed.combine(self.per_document, lambda a, b: a + b * documents, int(documents))


class Inputs(BaseModel):
    """The measured inputs of the projection, and where they were measured."""

    sizes: tuple[int, int]
    write_phase: Line
    serial: Line
    night: Line
    machine: str


class Meter(monitoring.CommandListener):
    """Counts the commands this process sends: round trips, app write statements, majority writes."""

    def __init__(self) -> None:
        self.round_trips = self.app_statements = self.majority_writes = self.bytes = 0
        self.own_cpu_s = 0.0  # the listener's own encoding, taken out of the client's CPU

    def _count_bytes(self, document: Any) -> None:
        started = time.process_time()
        self.bytes += len(bson.encode(document))
        self.own_cpu_s += time.process_time() - started

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.round_trips += 1
        self._count_bytes(event.command)
        target = str(event.command.get(event.command_name, ""))
        if event.command.get("writeConcern", {}).get("w") == "majority":
            self.majority_writes += 1
        elif event.command_name == "update" and not target.startswith("linkage_"):
            self.app_statements += len(event.command.get("updates", []))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        self._count_bytes(event.reply)

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


METER = Meter()


def _cpu_of(pid: int) -> float:
    """User + system CPU seconds of process `pid` (the embedded server)."""
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")


def _snapshot(server_pid: int) -> dict[str, float]:
    return {"seconds": time.perf_counter(), "round_trips": METER.round_trips, "app_statements": METER.app_statements,
            "majority_writes": METER.majority_writes, "bytes": METER.bytes,
            "client_cpu_s": time.process_time() - METER.own_cpu_s,
            "server_cpu_s": _cpu_of(server_pid)}


def metered(fn: Callable[[], Any], documents: int, server_pid: int) -> Cost:
    """Run fn; what it cost."""
    before = _snapshot(server_pid)
    fn()
    after = _snapshot(server_pid)
    spent = {key: after[key] - before[key] for key in before}
    return Cost(documents=documents, **spent)


def backfill_both(lk: Linkage) -> str:
    """Both backfill steps as a migration runs them (planned, journaled, applied); the run's id."""
    run_id, _ = start_run(lk, MigrationParams(steps=["order_delivery", "user_customer"]), "bench", new=True)
    with lk.hold(run_id):
        link_step(lk, run_id, "order_delivery")
        link_step(lk, run_id, "user_customer")
    return run_id


def measure_at(size: int) -> dict[str, Cost]:
    """The three phases' costs at `size` delivery statuses (and size / 4 account pairs) on a fresh server."""
    with tempfile.TemporaryDirectory(prefix="linkage-sizing-") as scratch, server(None, Path(scratch)) as uri:
        pid = int((Path(scratch) / "db" / "server.pid").read_text().strip())  # the server's CPU is read there
        client: MongoClient = MongoClient(uri)
        db, work = client[DB], Path(scratch)
        data.deliveries(db, size)
        data.accounts(db, size // 4)
        lk = Linkage(bench_settings(uri, DB, work / "linkage"), client)
        lk.ensure_bookkeeping()
        create_link_indexes(lk)
        writes: dict[str, str] = {}
        write_phase = metered(lambda: writes.update(run=backfill_both(lk)), size, pid)
        undo_run(lk, writes["run"])  # unmetered: the migrate below starts from unlinked data
        migrate = metered(lambda: whole_run(uri, DB, work / "migrate", RunKind.MIGRATE), size, pid)
        data.drift(db, data.Drift.of(NIGHTLY_DRIFT, size, size // 4), size, size // 4)
        night = metered(lambda: whole_run(uri, DB, work / "night", RunKind.RECONCILE), size, pid)
        client.close()
    serial = migrate.combine(write_phase, lambda a, b: max(0.0, a - b), size)
    return {"write_phase": write_phase, "serial": serial, "night": night}


def measure(small: int, large: int) -> Inputs:
    """Each phase's fixed and per-document cost, through its costs at two sizes."""
    at_small, at_large = measure_at(small), measure_at(large)
    lines = {phase: Line.through(at_small[phase], at_large[phase]) for phase in at_small}
    return Inputs(sizes=(small, large), **lines,
                  machine=f"{os.cpu_count()} cpus, nx-27017 (embedded, SQLite), load {os.getloadavg()[0]:.1f}")


class Assumptions(BaseModel):
    """The real replica set's side of the projection (see the module docstring and docs/sizing.md)."""

    rtt_ms: float = 1.0
    majority_ms: float = 2.0
    write_ceiling: float = PUBLISHED_INSERTS_S / 2
    read_ceiling: float = PUBLISHED_INSERTS_S * 2


def worker_seconds(cost: Cost, a: Assumptions) -> float:
    """One worker's seconds for `cost`'s work: its CPU, its round trips, the majority writes' extra wait."""
    return cost.client_cpu_s + cost.round_trips * a.rtt_ms / 1000 + cost.majority_writes * a.majority_ms / 1000


#: Documents each phase reads per delivery status (the data has a quarter as many account pairs): the write
#: phase its input (the status, its order; the pairs' two sides), the serial part the backup of what was
#: written (1.5) and validation's walk of the four collections (2.5), the night that walk.
READS_PER_DELIVERY = {"write_phase": 2.5, "serial": 4.0, "night": 2.5}


def primary_seconds(cost: Cost, reads: float, a: Assumptions) -> float:
    """The least the primary needs for `cost`'s work: its write statements at the write ceiling, or the
    documents it reads at the read ceiling."""
    return max(cost.app_statements / a.write_ceiling, cost.documents * reads / a.read_ceiling)


def phase_seconds(line: Line, phase: str, documents: float, workers: int, a: Assumptions) -> float:
    """The fixed part in one task; the per-document part spread over `workers`, capped by the primary."""
    spread = line.at(documents).combine(line.fixed, lambda total, fixed: total - fixed, int(documents))
    return worker_seconds(line.fixed, a) + max(worker_seconds(spread, a) / workers,
                                               primary_seconds(spread, READS_PER_DELIVERY[phase], a))


def migration_seconds(i: Inputs, documents: float, workers: int, a: Assumptions) -> float:
    """The write phase spread over `workers`; backup, validation and the verdict in one task each."""
    return (phase_seconds(i.write_phase, "write_phase", documents, workers, a) +
            phase_seconds(i.serial, "serial", documents, 1, a))


def night_seconds(i: Inputs, documents: float, a: Assumptions) -> float:
    """A reconcile is one read pass and the night's few writes: workers do not shorten it."""
    return phase_seconds(i.night, "night", documents, 1, a)


def check_lines(i: Inputs) -> list[str]:
    """This machine's fitted seconds at 1,000,000 beside what 1,000,000 took here."""
    night_1m = json.loads((ROOT / "bench" / "results" / "reconcile.json").read_text())["nights"]["1,000,000"]
    migrate_1m = i.write_phase.at(1e6).seconds + i.serial.at(1e6).seconds
    return ["check: the lines fitted here, at 1,000,000 (embedded server, this machine):",
            f"  migrate {migrate_1m:,.0f}s fitted; measured by `make bench` (bench/results/latest.json at "
            "a2f0d59, 2026-11-26): 1,081s",
            f"  night {i.night.at(1e6).seconds:,.0f}s fitted; measured by `make bench-reconcile` "
            f"(bench/results/reconcile.json): {night_1m['seconds']:,.0f}s"]


def hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min"


def input_lines(i: Inputs) -> list[str]:
    lines = [f"inputs: fitted through {i.sizes[0]:,} and {i.sizes[1]:,} delivery statuses ({i.machine}):"]
    for name, line in (("write phase", i.write_phase), ("serial part", i.serial), ("night", i.night)):
        per, fixed = line.per_document, line.fixed
        lines.append(f"  {name:12s} per 1,000 docs: {per.round_trips * 1000:.1f} round trips, "
                     f"{per.app_statements * 1000:,.0f} app statements, {per.majority_writes * 1000:.1f} majority "
                     f"writes, {per.bytes * 1000 / 1e6:.2f} MB, {per.client_cpu_s * 1000:.2f}s client CPU, "
                     f"{per.server_cpu_s * 1000:.2f}s server CPU; fixed: {fixed.round_trips:.0f} round trips, "
                     f"{fixed.client_cpu_s:.1f}s client CPU")
    return lines


def table(i: Inputs, a: Assumptions) -> str:
    lines = input_lines(i)
    lines.append(f"assumed: RTT {a.rtt_ms} ms, majority write +{a.majority_ms} ms, primary ceilings "
                 f"{a.write_ceiling:,.0f} updates/s and {a.read_ceiling:,.0f} docs read/s")
    lines.append(f"{'delivery statuses':>18s} {'workers':>8s} {'migration':>10s} {'night (1% drift)':>17s}")
    for documents in SIZES:
        for workers in WORKERS:
            lines.append(f"{documents:>18,} {workers:>8d} {hours(migration_seconds(i, documents, workers, a)):>10s} "
                         f"{hours(night_seconds(i, documents, a)):>17s}")
    return "\n".join(lines + check_lines(i))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--measure", metavar="SMALL,LARGE", help="measure the inputs at these sizes first")
    defaults = Assumptions()
    for name in Assumptions.model_fields:
        parser.add_argument(f"--{name.replace('_', '-')}", type=float, default=getattr(defaults, name))
    args = parser.parse_args()
    if args.measure:
        monitoring.register(METER)
        small, large = (int(size) for size in args.measure.split(","))
        INPUTS.write_text(measure(small, large).model_dump_json(indent=2))
    inputs = Inputs.model_validate_json(INPUTS.read_text())
    print(table(inputs, Assumptions(**{name: getattr(args, name) for name in Assumptions.model_fields})))


if __name__ == "__main__":
    main()
