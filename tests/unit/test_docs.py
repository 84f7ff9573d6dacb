"""The documentation: the site builds strictly (a dead link, a dead anchor or a page left out of the nav fails
the suite), and the README stays a front door that names every DAG and every command.

The strict build runs here rather than as a separate step of `make test` so that `make test-fast`, a bare
`pytest` and CI all run it: it takes about a second.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from linkage.cli.main import build_parser

from helpers import ROOT

README = (ROOT / "README.md").read_text()


def build(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    """`mkdocs build --strict` of `config` into `site`, as `make docs` runs it."""
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(config),
                           "--site-dir", str(site)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})


def test_the_site_builds_strictly(tmp_path: Path) -> None:
    done = build(ROOT / "mkdocs.yml", tmp_path / "site")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "site" / "index.html").exists()
    home = (tmp_path / "site" / "index.html").read_text()
    assert 'class="mermaid"' in home and "cross-collection references" in home, "the home page takes the README's"


def test_a_dead_link_or_a_page_outside_the_nav_fails_the_build(tmp_path: Path) -> None:
    """The strictness is real: the same site with one dead link, then with one page missing from the nav."""
    copy = tmp_path / "repo"
    shutil.copytree(ROOT / "docs", copy / "docs")
    shutil.copy(ROOT / "mkdocs.yml", copy / "mkdocs.yml")
    shutil.copy(ROOT / "README.md", copy / "README.md")
    runbook = copy / "docs" / "RUNBOOK.md"
    runbook.write_text(runbook.read_text() + "\nSee [the old page](no-such-page.md).\n")
    done = build(copy / "mkdocs.yml", tmp_path / "dead-link")
    assert done.returncode == 1 and "no-such-page.md" in done.stderr, done.stderr
    shutil.copy(ROOT / "docs" / "RUNBOOK.md", runbook)
    (copy / "docs" / "orphan.md").write_text("# A page nobody can reach\n")
    done = build(copy / "mkdocs.yml", tmp_path / "orphan")
    assert done.returncode == 1 and "orphan.md" in done.stderr, done.stderr


def test_the_readme_is_a_front_door_naming_every_dag_and_command() -> None:
    lines = README.splitlines()
    assert len(lines) <= 250, f"README.md is {len(lines)} lines: move the detail into a docs/ page"
    dags = {m for path in (ROOT / "dags").glob("*.py") for m in re.findall(r'dag_id="([^"]+)"', path.read_text())}
    assert len(dags) >= 4, dags
    subparsers = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    rows = [line for line in lines if line.startswith("| `")]
    for dag in dags:
        assert any(row.startswith(f"| `{dag}` |") for row in rows), f"the README's DAG table lacks {dag}"
    for command in subparsers.choices:
        assert any(row.startswith(f"| `linkage {command}") for row in rows), f"the README's CLI table lacks {command}"
