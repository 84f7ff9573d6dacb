"""The benchmark code runs end to end at a tiny size, so it cannot rot (numbers are not judged here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.run import main
from linkage.server import EmbeddedServer

KEYS = {"backfill_vs_raw", "backfill_vs_raw_small", "backfill_vs_naive", "user_customer_vs_raw", "rollback_vs_raw",
        "validation_vs_read", "rss_growth", "parallel_2_vs_1", "read_write_floor_vs_raw", "backfill_vs_read_write_floor",
        "sizes", "rates", "machine"}


@pytest.mark.timeout(300)
@pytest.mark.parametrize("given_server", [False, True], ids=["embedded", "mongo-uri"])
def test_bench_runs_and_writes_every_result(given_server: bool, wire_server: EmbeddedServer, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "latest.json"
    server = ["--mongo-uri", wire_server.uri] if given_server else []
    monkeypatch.setattr("sys.argv", ["bench", "--sizes", "200,2000", "--no-dag", "--out", str(out), *server])
    main()
    result = json.loads(out.read_text())
    assert KEYS <= set(result)
    for key in KEYS - {"sizes", "rates", "machine"}:
        assert result[key] > 0, key
    assert result["sizes"]["large"] == 10 * result["sizes"]["small"]
    assert "backfill vs raw bulk_write" in capsys.readouterr().out
    assert ("nx-27017" in result["machine"]["server"]) != given_server
