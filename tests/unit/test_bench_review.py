"""`make bench-review`'s arithmetic (the browser run itself is what tests/ui/test_browser_suggestions.py drives): a
person's time is the machine's measured seconds plus the Keystroke-Level Model's for the actions counted, and
items per minute are the decisions over that time."""

from __future__ import annotations

import pytest

from bench.review_clearing import APPLY_COMMAND, KLM, summary


def test_a_persons_time_is_the_machines_plus_the_keystroke_level_models_for_the_actions() -> None:
    phases = [{"filter": {}, "shown": 600, "recorded": 600, "clicks": 8, "keys": 3, "seconds": 4.0},
              {"filter": {}, "shown": 0, "recorded": 0, "clicks": 8, "keys": 3, "seconds": 3.0},
              {"commands": 1, "keys": len(APPLY_COMMAND) + 1, "seconds": 10.0}]
    found = summary({"open_items": 1000}, {"phases": phases, "decisions": 600, "applied": 600})
    click = KLM["M"] + KLM["P"] + KLM["B"]
    first = 4.0 + 8 * click + 3 * KLM["K"]
    apply = 10.0 + KLM["M"] + 24 * KLM["K"]
    assert found["phases"][0]["person_seconds"] == pytest.approx(first, abs=0.05)
    assert found["phases"][2]["person_seconds"] == pytest.approx(apply, abs=0.05)
    person = found["person"]
    assert (person["clicks"], person["keys"], person["machine_seconds"]) == (16, 30, 17.0)
    assert person["ambiguous_deliveries_seconds"] == pytest.approx(first + apply, abs=0.1)
    assert person["items_per_minute"] == round(600 / person["seconds"] * 60)
    assert person["baseline_minutes_for_those"] == 48.0
