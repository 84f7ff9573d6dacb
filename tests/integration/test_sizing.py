"""bench.sizing: the inputs it measures are the engine's real work, and its projection behaves as its model says."""

from __future__ import annotations

from pathlib import Path

import pytest
from pymongo import monitoring

from bench import sizing
from bench.sizing import Assumptions, Cost, Inputs, Line, migration_seconds, night_seconds


def cost(documents: int, **per: float) -> Cost:
    fields = {key: 0.0 for key in Cost.model_fields if key != "documents"}
    return Cost(documents=documents, **{**fields, **per})


def test_a_line_through_two_sizes_splits_fixed_from_per_document_cost() -> None:
    line = Line.through(cost(1000, round_trips=160, client_cpu_s=3.0), cost(5000, round_trips=400, client_cpu_s=3.8))
    assert line.per_document.round_trips == pytest.approx(0.06)
    assert line.fixed.round_trips == pytest.approx(100)
    assert line.fixed.client_cpu_s == pytest.approx(2.8)
    assert line.at(1_000_000).round_trips == pytest.approx(60_100)


def test_workers_shorten_the_write_phase_until_the_primary_caps_it() -> None:
    per_doc = dict(round_trips=0.06, majority_writes=0.02, client_cpu_s=0.0002, app_statements=1.5)
    write = Line.through(cost(1000, **{k: v * 1000 for k, v in per_doc.items()}),
                         cost(2000, **{k: v * 2000 for k, v in per_doc.items()}))
    nothing = Line.through(cost(1000), cost(2000))
    inputs = Inputs(sizes=(1000, 2000), write_phase=write, serial=nothing, night=nothing, machine="test")
    a = Assumptions(rtt_ms=1.0, majority_ms=2.0, write_ceiling=50_000, read_ceiling=1e12)
    one, four, many = (migration_seconds(inputs, 10_000_000, w, a) for w in (1, 4, 10_000))
    assert one == pytest.approx(10_000_000 * (0.0002 + 0.06e-3 + 0.02 * 2e-3))  # one worker: CPU + waits
    assert four == pytest.approx(one / 4)
    assert many == pytest.approx(10_000_000 * 1.5 / 50_000)  # the primary's update ceiling, whatever the workers
    assert night_seconds(inputs, 10_000_000, a) == pytest.approx(0, abs=1e-3)  # a night of nothing to read


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_measured_inputs_count_the_engines_real_statements(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sizing, "INPUTS", tmp_path / "sizing.json")
    monitoring.register(sizing.METER)
    measured = sizing.measure(400, 1200)
    # per delivery status: its own link, and both sides of a quarter as many account pairs
    assert measured.write_phase.per_document.app_statements == pytest.approx(1.5)
    assert measured.write_phase.per_document.majority_writes > 0  # the journal and the fences, per batch
    assert measured.write_phase.per_document.round_trips > 0  # a batch's commands grow with the documents
    assert measured.write_phase.per_document.bytes > measured.night.per_document.bytes > 0  # a night writes 1 %
    assert measured.serial.per_document.app_statements == 0  # backup and validation write nothing of the app's
