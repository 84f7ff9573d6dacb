"""The benchmark code runs end to end at a tiny size, so it cannot rot. Speeds are not judged here (that is
the benchmark's job); that the measured work was really done, and that the ratios are what was measured, are."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.run import main
from linkage.server import EmbeddedServer

KEYS = {"backfill_vs_raw", "backfill_vs_raw_small", "backfill_vs_naive", "user_customer_vs_raw", "rollback_vs_raw",
        "validation_vs_read", "rss_growth", "parallel_2_vs_1", "read_write_floor_vs_raw",
        "backfill_vs_read_write_floor",
        "sizes", "rates", "machine"}


@pytest.mark.timeout(300)
@pytest.mark.parametrize("given_server", [False, True], ids=["embedded", "mongo-uri"])
def test_bench_runs_and_writes_every_result(given_server: bool, wire_server: EmbeddedServer, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "latest.json"
    server = ["--mongo-uri", wire_server.uri] if given_server else []
    monkeypatch.setattr("sys.argv", ["bench", "--sizes", "200,2000", "--no-dag", "--out", str(out), *server])
    main()
    result = json.loads(out.read_text())
    assert KEYS <= set(result)
    small, large = result["sizes"]["small"], result["sizes"]["large"]
    assert large == 10 * small
    # the timed engine really linked every delivery, and its rollback really undid them
    assert result["checks"] == {"large_linked": large, "large_restored": 0, "small_linked": small,
                                "dangling_found": 0}
    rates = result["rates"]
    assert result["backfill_vs_raw"] == pytest.approx(rates["backfill_docs_s"] / rates["raw_ceiling_docs_s"], abs=0.01)
    assert result["backfill_vs_naive"] > 1  # batched beats one round trip per document, even at this size
    assert 0.5 < result["rss_growth"] < 2
    assert "backfill vs raw bulk_write" in capsys.readouterr().out
    assert ("nx-27017" in result["machine"]["server"]) != given_server
