"""Mutation tests of the gate: the mistakes that used to pass silently now fail the suite.

Each case copies the package, makes one mistake in a relation's rules or checks (a misspelt rule name, a finding
filed under the wrong rule, a rule reported by a check that does not measure it, a rule nobody measures), and runs
`tests/integration/test_gate.py` against the copy in a fresh interpreter: it must fail. The unmutated copy must
pass, so the failures are the mutations' doing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import ROOT

PACKAGE = ROOT / "include" / "linkage"
#: name -> (file, text, its mistake, what the failing suite says)
MUTATIONS = {
    # the old failure mode: a rule's name typed wrong where it is declared
    "misspelt_name": ("relations/user_customer/sides.py", 'name="user_link_duplicates"', 'name="user_link_duplicate"',
                      "user_link_duplicate"),
    # a finding filed under a rule its check measures, but the wrong one
    "wrong_rule": ("relations/user_customer/checks.py", "Finding(side.duplicates,", "Finding(side.dangling,",
                   "['user_refs_dangling'] == ['user_link_duplicates']"),
    # a finding for a rule its check does not measure
    "unmeasured_finding": ("relations/order_delivery/__init__.py", "Finding(ORDER_LINKS_NOT_SINGLE,",
                           "Finding(ORDER_COVERAGE,",
                           "check order_links reported rule 'order_coverage', which it does not measure"),
    # a rule no check measures any more: refused when the registry loads
    "unmeasured_rule": ("relations/order_delivery/__init__.py",
                        "measures=(ORDER_REFS_DANGLING, ORDER_LINKS_NOT_SINGLE)", "measures=(ORDER_REFS_DANGLING,)",
                        "order_links_not_single must be measured by exactly one"),
}


def run_gate_tests(tmp_path: Path, mutation: tuple[str, str, str, str] | None) -> subprocess.CompletedProcess[str]:
    copy = tmp_path / "include" / "linkage"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "docs_assets"))
    (copy / "validation" / "docs_assets").symlink_to(PACKAGE / "validation" / "docs_assets")
    if mutation:
        name, before, after, _ = mutation
        source = (copy / name).read_text()
        assert source.count(before) == 1, f"the mutation no longer applies: {before!r} in {name}"
        (copy / name).write_text(source.replace(before, after))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "include"), str(ROOT / "tests"), str(ROOT)])}
    where = subprocess.run([sys.executable, "-c", "import linkage; print(linkage.__file__)"], env=env,
                           capture_output=True, text=True, check=True)
    assert where.stdout.strip().startswith(str(copy)), "the copy, not the installed package, is under test"
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x",
                           str(ROOT / "tests" / "integration" / "test_gate.py")], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_the_unmutated_copy_passes(tmp_path: Path) -> None:
    done = run_gate_tests(tmp_path, None)
    assert done.returncode == 0, done.stdout[-3000:]


@pytest.mark.slow
@pytest.mark.parametrize("mutation", list(MUTATIONS))
def test_a_mistake_in_the_rules_fails_the_suite(tmp_path: Path, mutation: str) -> None:
    done = run_gate_tests(tmp_path, MUTATIONS[mutation])
    assert done.returncode != 0, f"{mutation} passed the gate tests:\n{done.stdout[-3000:]}"
    assert MUTATIONS[mutation][3] in done.stdout + done.stderr, (done.stdout + done.stderr)[-3000:]
