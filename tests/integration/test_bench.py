"""The benchmark code runs end to end at a tiny size, so it cannot rot. Speeds are not judged here (that is
the benchmark's job); that the measured work was really done, and that the ratios are what was measured, are."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pymongo import MongoClient

from bench.data import Drift
from bench.proxy import LatencyProxy, ping_ms, proxied_uri
from bench.run import main
from linkage.dev.server import EmbeddedServer

KEYS = {"backfill_vs_raw", "backfill_vs_raw_small", "backfill_vs_naive", "user_customer_vs_raw", "rollback_vs_raw",
        "validation_vs_read", "rss_growth", "partitions", "read_write_floor_vs_raw",
        "backfill_vs_read_write_floor",
        "reconcile_vs_link_field_read", "reconcile_vs_migrate", "reconcile_drift_scaling", "reconcile_size_growth",
        "reconcile", "latency",
        "sizes", "rates", "machine"}
LATENCY_KEYS = {"latency_backfill_vs_raw", "latency_backfill_vs_naive", "rates", "ping_ms", "seconds",
                "without_latency", "delay_ms", "documents", "backfill_round_trips_per_1000_docs",
                "backfill_network_seconds"}


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("given_server", [False, True], ids=["embedded", "mongo-uri"])
def test_bench_runs_and_writes_every_result(given_server: bool, wire_server: EmbeddedServer, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "latest.json"
    server = ["--mongo-uri", wire_server.uri] if given_server else []
    # two drift levels (the nightly 1% is always one) keep this under a minute; the bench runs four
    monkeypatch.setattr("sys.argv", ["bench", "--sizes", "200,2000", "--no-dag", "--drift-levels", "0.05",
                                     "--out", str(out), *server])
    main()
    result = json.loads(out.read_text())
    assert KEYS <= set(result)
    small, large = result["sizes"]["small"], result["sizes"]["large"]
    assert large == 10 * small
    checks = result["checks"]
    # the timed engine really linked every delivery, and its rollback really undid them, with and without latency
    assert {k: checks[k] for k in ("large_linked", "large_restored", "small_linked", "dangling_found")} == {
        "large_linked": large, "large_restored": 0, "small_linked": small, "dangling_found": 0}
    assert checks["latency"] == {route: {"linked": small, "restored": 0} for route in ("direct", "proxied")}
    # every whole run did exactly what was planted: the migrate linked everything, each reconcile linked and
    # repaired exactly its night's drift and found exactly its deleted orders, and left nothing unlinked
    assert checks["runs"] == checks["runs_expected"]
    assert set(checks["runs"]) == {"migrate", "reconcile", "reconcile at 1.0%", "reconcile at 5.0%"}
    night = result["reconcile"]["large"]
    assert night["planted"] == Drift.of(0.01, large, large // 4).as_dict()
    assert checks["runs_expected"]["reconcile"]["drift_found"] == night["planted"]["deleted_orders"] > 0
    assert checks["runs_expected"]["migrate"]["linked"] == {"order_delivery": large, "user_customer": large // 4}
    seconds = result["seconds"]
    assert result["reconcile_vs_link_field_read"] == pytest.approx(
        seconds["reconcile"] / seconds["link_field_read"], rel=0.05)
    assert result["reconcile_vs_migrate"] == pytest.approx(seconds["reconcile"] / seconds["migrate"], rel=0.05)
    assert list(result["reconcile_drift_scaling"]) == ["1.0%", "5.0%"]

    latency = result["latency"]
    assert LATENCY_KEYS <= set(latency)
    lat_rates = latency["rates"]
    assert latency["latency_backfill_vs_raw"] == pytest.approx(
        lat_rates["backfill_docs_s"] / lat_rates["raw_ceiling_docs_s"], abs=0.01)
    assert 0.7 < latency["ping_ms"]["added"] < 1.6  # the proxy adds the millisecond it claims
    assert latency["backfill_round_trips_per_1000_docs"] > 1  # the engine's commands were counted

    rates = result["rates"]
    # the raw ceiling is the two measured around the engine's run, taken together (their mean in seconds)
    before, after = rates["raw_ceiling_before_docs_s"], rates["raw_ceiling_after_docs_s"]
    assert min(before, after) - 1 <= rates["raw_ceiling_docs_s"] <= max(before, after) + 1
    assert result["backfill_vs_raw"] == pytest.approx(rates["backfill_docs_s"] / rates["raw_ceiling_docs_s"], abs=0.01)
    # every other ratio is the one its inputs give (rounded inputs at this size: 15%)
    floor_s = large / rates["raw_ceiling_docs_s"] + seconds["input_read"]
    assert {key: result[key] for key in ("rollback_vs_raw", "user_customer_vs_raw", "validation_vs_read",
                                         "read_write_floor_vs_raw",
                                         "backfill_vs_read_write_floor", "rss_growth")} == pytest.approx({
        "rollback_vs_raw": rates["rollback_docs_s"] / rates["raw_ceiling_docs_s"],
        "user_customer_vs_raw": rates["user_customer_pairs_s"] / rates["raw_pairs_s"],
        "validation_vs_read": seconds["validation"] / seconds["bare_read"],
        "read_write_floor_vs_raw": (large / rates["raw_ceiling_docs_s"]) / floor_s,
        "backfill_vs_read_write_floor": floor_s / seconds["backfill"],
        "rss_growth": result["peak_rss_mb"]["large"] / result["peak_rss_mb"]["small"]}, rel=0.15)
    # 1 partition and 4, through the network and straight to the server: each linked every delivery, and the
    # speed-up is the seconds' ratio
    for route in (result["partitions"], result["partitions"]["without_latency"]):
        assert route["linked"] == {"1_partition": 2 * small, "4_partitions": 2 * small}
        assert route["partitions_4_vs_1"] == pytest.approx(
            route["seconds"]["1_partition"] / route["seconds"]["4_partitions"], rel=0.05)
    assert seconds["validation"] >= seconds["validation_gate"] > 0  # GX's judging is part of validation
    assert result["backfill_vs_naive"] > 1  # batched beats one round trip per document, even at this size
    printed = capsys.readouterr().out
    assert "backfill vs raw bulk_write" in printed and "link-field read" in printed
    assert "whole runs did exactly the planted work: yes" in printed
    assert ("nx-27017" in result["machine"]["server"]) != given_server


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_bench_reconcile_only_measures_each_size_and_did_the_planted_work(
        wire_server: EmbeddedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """`make bench-reconcile` at two tiny sizes: each night linked and repaired exactly its drift, found its
    deleted orders, and its ratio is its own seconds over its own bare read."""
    out = tmp_path / "reconcile.json"
    monkeypatch.setattr("sys.argv", ["bench", "--reconcile-only", "400,2000", "--mongo-uri", wire_server.uri,
                                     "--out", str(out)])
    main()
    result = json.loads(out.read_text())
    assert list(result["nights"]) == ["400", "2,000"] and result["drift_fraction"] == 0.01
    for size, night in result["nights"].items():
        assert night["outcome"] == night["expected"], size
        assert night["expected"]["drift_found"] == night["planted"]["deleted_orders"]
        # rounded inputs at this size (a read of a few milliseconds): 15%
        assert night["vs_link_field_read"] == pytest.approx(night["seconds"] / night["link_field_read"], rel=0.15)
        assert result["vs_link_field_read"][size] == night["vs_link_field_read"]
        # a night backs up inside each relation's group: its targeted backups are timed there
        assert {"validate", "user_customer", "order_delivery", "backup_order_delivery",
                "backup_user_customer"} <= set(night["breakdown"])
    assert "reconcile at 2,000 deliveries" in capsys.readouterr().out


def test_proxy_forwards_whole_messages_late_and_in_order(wire_server: EmbeddedServer) -> None:
    """Every reply comes back to the request it answers (large ones too), each round trip ~2 ms later."""
    with LatencyProxy(wire_server.uri, delay_ms=2.0) as proxy:
        client: MongoClient = MongoClient(proxy.uri)
        coll = client["bench_proxy_test"].docs
        try:
            coll.insert_many([{"i": i, "pad": "x" * 1000} for i in range(3000)])  # messages of several MB
            assert [d["i"] for d in coll.find({}, {"i": 1}).sort("i", 1).batch_size(500)] == list(range(3000))
            added = ping_ms(proxy.uri) - ping_ms(wire_server.uri)
            assert 1.4 < added < 3.5, f"{added:.2f} ms added (calibrated at {proxy.added_ms:.2f})"  # a loaded machine
        finally:
            client.drop_database(coll.database.name)
            client.close()


def test_proxied_uri_keeps_credentials_and_options() -> None:
    assert proxied_uri("mongodb://u:p@db.example:27017/app?authSource=admin", 5) == \
        "mongodb://u:p@127.0.0.1:5/app?authSource=admin&directConnection=true"
    assert proxied_uri("mongodb://a:1,b:2/", 7) == "mongodb://127.0.0.1:7/?directConnection=true"


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_bench_hotkey_backfills_both_databases_and_its_ratio_is_what_it_measured(
        wire_server: EmbeddedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """`make bench-hotkey` at a tiny size: both databases linked whole and restored, the ratio their peak RSS."""
    from bench import hotkey

    out = tmp_path / "hotkey.json"
    monkeypatch.setattr("sys.argv", ["bench", "--size", "3000", "--mongo-uri", wire_server.uri, "--out", str(out)])
    hotkey.main()
    result = json.loads(out.read_text())
    for label in ("hot", "spread"):
        assert result[label]["linked"] == 3000 and result[label]["restored"], label
    assert result["rss_ratio"] == pytest.approx(result["hot"]["peak_rss_mb"] / result["spread"]["peak_rss_mb"],
                                                abs=0.01)
    assert result["met"] == (result["rss_ratio"] <= 1.2)
    assert "3,000 deliveries: one customer" in capsys.readouterr().out
