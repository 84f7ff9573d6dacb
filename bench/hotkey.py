"""Issue 29: the backfill's peak RSS on one customer's deliveries against the same number spread across customers.

    python -m bench.hotkey                      # make bench-hotkey: 100,000 deliveries, ~5 minutes
    python -m bench.hotkey --size 20000 --server ferretdb
    python -m bench.hotkey --mongo-uri mongodb://host:27017/   # its bench_hot and bench_spread are dropped

The spread database is `bench.data.deliveries` (two deliveries per customer, one order each); the hot one
holds the same number of deliveries and orders of a single customer, one order a day (every delivery has
exactly one candidate, as in the spread data), so the engine's work is the same per document. Each
backfill (and its rollback) runs in a fresh process (`bench.engine_process --backfill-only`), whose peak
RSS is the engine's alone. Goal: hot / spread <= 1.2. Results: stdout and bench/results/hotkey.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

from pymongo import MongoClient
from pymongo.database import Database

from bench import data
from bench.engine_process import bench_settings
from bench.run import HOT_DB, ROOT, SERVERS, SPREAD_DB, create_link_indexes, engine_process, machine, server
from linkage.run.session import Linkage

RESULTS = ROOT / "bench" / "results" / "hotkey.json"
GOAL = 1.2
HOT_CUSTOMER = "guest"


def hot_deliveries(db: Database, n: int) -> None:
    """n orders and n delivery statuses of one customer, one of each a day (each delivery one candidate)."""
    def day(i: int) -> str:
        return (data.BASE + timedelta(days=i)).isoformat()
    data.insert(db, "orders", ({"id": f"o{i}", "customer_id": HOT_CUSTOMER, "delivery_date": day(i),
                                "status": "delivered"} for i in range(n)))
    data.insert(db, "delivery_statuses", ({"id": f"d{i}", "customer_id": HOT_CUSTOMER, "delivery_date": day(i),
                                           "status": "delivered"} for i in range(n)))


def backfill(uri: str, client: MongoClient, name: str, work: Path) -> dict[str, Any]:
    """One backfill and rollback of database `name` in a fresh process (the engine's indexes made first)."""
    lk = Linkage(bench_settings(uri, name, work / "indexes"), client)
    lk.ensure_bookkeeping()
    create_link_indexes(lk)
    done = engine_process(uri, name, work / "engine", "--backfill-only")
    return {"peak_rss_mb": round(done["peak_rss_mb"], 1), "backfill_s": round(done["backfill"], 2),
            "rollback_s": round(done["rollback"], 2), "linked": done["linked_after_backfill"],
            "restored": done["linked_after_rollback"] == 0}


def run(size: int, uri: str | None, name: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="linkage-bench-hot-") as scratch, \
            server(uri, Path(scratch), name) as server_uri:
        tmp = Path(scratch)
        client: MongoClient = MongoClient(server_uri)
        data.deliveries(client[SPREAD_DB], size)
        hot_deliveries(client[HOT_DB], size)
        spread = backfill(server_uri, client, SPREAD_DB, tmp / "spread")
        hot = backfill(server_uri, client, HOT_DB, tmp / "hot")
        client.close()
    ratio = round(hot["peak_rss_mb"] / spread["peak_rss_mb"], 3)
    return {"deliveries": size, "hot": hot, "spread": spread, "rss_ratio": ratio, "goal": GOAL,
            "met": ratio <= GOAL and hot["linked"] == spread["linked"] == size, "machine": machine(uri, name)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000, help="delivery statuses in each database")
    parser.add_argument("--mongo-uri", help=f"benchmark this server (its {HOT_DB} and {SPREAD_DB} are dropped)")
    parser.add_argument("--server", choices=sorted(SERVERS), default="nx")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    result = run(args.size, args.mongo_uri, args.server)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    hot, spread = result["hot"], result["spread"]
    print(f"{args.size:,} deliveries: one customer {hot['peak_rss_mb']} MB peak RSS ({hot['backfill_s']} s "
          f"backfill), spread {spread['peak_rss_mb']} MB ({spread['backfill_s']} s): {result['rss_ratio']}x "
          f"(goal <= {GOAL}; linked {hot['linked']} / {spread['linked']})")
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
