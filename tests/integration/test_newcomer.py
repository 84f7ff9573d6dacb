"""Issue 28, point 6: what a newcomer tripped over on the command line, each answered in one line.

`linkage decide --file` of a missing file or a directory (no traceback), a file a spreadsheet saved in
Windows-1252 or with semicolons (read), one that is neither UTF-8 nor Windows-1252 (save it as UTF-8),
"recorded 1 decision" in the singular, and `--db ''` refused instead of silently meaning `app`.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest
from pymongo.database import Database
from test_decisions import export

from linkage.core.csvsafe import MalformedCsv, decoded, delimiter, read_rows
from linkage.core.models import RunState
from linkage.core.settings import Settings
from linkage.run.params import MigrationParams
from linkage.run.session import Linkage
from linkage.stages.executor import migrate

from helpers import empty_app, run_cli


@pytest.fixture
def migrated(lk: Linkage, db: Database, seeded: dict) -> dict[str, Any]:
    report = migrate(lk, MigrationParams(), "test")
    assert report.state == RunState.SUCCEEDED
    return report.as_json()


def one_line(done: Any, command: str) -> str:
    """The command failed with exactly one line on stderr (no traceback), naming itself; that line."""
    assert done.returncode == 1, (done.stdout, done.stderr)
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"linkage {command}: "), done.stderr
    return str(lines[0])


def saved(rows: list[dict[str, str]], separator: str = ",") -> str:
    """What a spreadsheet saves: the header and rows, unquoted where it can, with its separator."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), delimiter=separator, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows({k: ("'" + v if v.startswith(("=", "+", "-", "@")) else v) for k, v in row.items()}
                     for row in rows)
    return buffer.getvalue()


def test_a_missing_file_or_a_directory_is_one_line_not_a_traceback(settings: Settings, tmp_path: Path) -> None:
    missing = one_line(run_cli(settings, "decide", "--file", str(tmp_path / "nope.csv")), "decide")
    assert missing == f"linkage decide: {tmp_path / 'nope.csv'}: no such file"
    folder = one_line(run_cli(settings, "decide", "--file", str(tmp_path)), "decide")
    assert folder == f"linkage decide: {tmp_path} is a directory: give the filled-in export's file"


def test_an_empty_db_is_refused_not_taken_for_app(settings: Settings, db: Database) -> None:
    empty_app(db)
    for command in ("status", "review"):
        refused = one_line(run_cli(settings, command, "--db", ""), command)
        assert refused == (f"linkage {command}: an empty db names nothing: give one, or leave the option out")
    assert run_cli(settings, "status").returncode == 0  # LINKAGE_DB (the test's database) when --db is left out


def test_what_spreadsheets_save_is_read_and_one_decision_is_singular(
        lk: Linkage, migrated: dict[str, Any], settings: Settings, tmp_path: Path) -> None:
    rows = export(lk, step="order_delivery")
    unmatched = [r for r in rows if r["category"] == "unmatched"][:2]
    unmatched[0].update(decision="none", note="café closed, no order: 5 €")
    semicolons = saved(rows, ";")
    assert delimiter(semicolons) == ";"
    (tmp_path / "excel.csv").write_bytes(semicolons.encode("cp1252"))
    done = run_cli(settings, "decide", "--file", str(tmp_path / "excel.csv"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("recorded 1 decision (none 1) as ")
    assert lk.decisions.history(unmatched[0]["item_id"])[0].note == "café closed, no order: 5 €"

    unmatched[0].update(decision="", note="")
    unmatched[1].update(decision="none", note="naïve")
    (tmp_path / "tabs.txt").write_bytes(b"\xff\xfe" + saved(rows, "\t").encode("utf-16-le"))  # Excel's "Unicode text"
    assert run_cli(settings, "decide", "--file", str(tmp_path / "tabs.txt")).returncode == 0
    assert lk.decisions.history(unmatched[1]["item_id"])[0].note == "naïve"

    (tmp_path / "binary.csv").write_bytes(b"item_id,decision\r\n\x81\x8d,none\r\n")
    refused = one_line(run_cli(settings, "decide", "--file", str(tmp_path / "binary.csv")), "decide")
    assert refused == (f"linkage decide: {tmp_path / 'binary.csv'} is neither UTF-8 nor Windows-1252 text "
                       "(byte 18): save it as CSV UTF-8")


def test_a_header_without_item_id_names_the_separator_it_was_read_with() -> None:
    assert decoded("id;décision\r\n".encode("cp1252")) == "id;décision\r\n"
    with pytest.raises(MalformedCsv, match=r"the header has no column item_id \(read as semicolon-separated\)"):
        list(read_rows("id;decision\r\nx;none\r\n", ["item_id"]))
    assert [r.cells for r in read_rows("item_id\tdecision\r\nx\tnone\r\n", ["item_id"])] == [
        {"item_id": "x", "decision": "none"}]
    assert [r.cells for r in read_rows('"item_id","note"\r\n"x","a; b"\r\n', ["item_id"])] == [
        {"item_id": "x", "note": "a; b"}]
