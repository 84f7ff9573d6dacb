"""CSV that is safe to open in a spreadsheet, and that reads back exactly what was written.

A spreadsheet runs a cell that starts with `=`, `+`, `-` or `@` (or a tab, CR or LF before one)
as a formula: app data is written by strangers, so every CSV linkage writes puts a `'` before such
a cell, inside a quoted field (OWASP's CSV-injection rule). To read its own exports back unchanged
the `'` must be told from one the data had: a cell that already starts with `'` gets one more.
Reading takes exactly one leading `'` off a cell that starts with `'` followed by a formula
character or another `'`; nothing else is changed.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import NamedTuple

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")
QUOTE = "'"


class MalformedCsv(ValueError):
    """A file that is not CSV as linkage reads it; `line` is where it stopped making sense."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line, self.reason = line, reason


def neutralise(cell: str) -> str:
    return QUOTE + cell if cell.startswith((*FORMULA_STARTS, QUOTE)) else cell


def restore(cell: str) -> str:
    return cell[1:] if cell.startswith(QUOTE) and cell[1:].startswith((*FORMULA_STARTS, QUOTE)) else cell


def write_rows(columns: Sequence[str], rows: Iterable[Mapping[str, str]]) -> Iterator[str]:
    """The header, then each row, as CSV text a line at a time (every field quoted, formulas neutralised)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_ALL)
    writer.writerow([neutralise(c) for c in columns])
    for row in rows:
        writer.writerow([neutralise(row.get(column, "")) for column in columns])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


class Row(NamedTuple):
    """A data row: the line it starts on, its cells by column (restored), or why it is malformed."""

    line: int
    cells: dict[str, str]
    problem: str | None = None


def decoded(data: bytes) -> str:
    """A file's text as spreadsheets save it: UTF-8 (with or without a BOM), UTF-16 with its BOM (Excel's
    "Unicode text"), else Windows-1252 (Excel's "CSV" on Windows); anything else is refused, in one line."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError as exc:
        raise ValueError(f"neither UTF-8 nor Windows-1252 text (byte {exc.start}): save it as CSV UTF-8") from None


#: The separators a spreadsheet writes, by name: a comma, or (where the comma is the decimal mark, as in
#: much of Europe) a semicolon, or a tab.
DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab"}


def delimiter(text: str) -> str:
    """The separator of the header line: the one of `DELIMITERS` it holds most of (a comma on a tie)."""
    header = text.split("\n", 1)[0]
    return max(DELIMITERS, key=lambda d: (header.count(d), d == ","))


def read_rows(text: str, required: Sequence[str]) -> Iterator[Row]:
    """Each data row with the line it starts on; blank rows are skipped. Columns beyond `required` are
    kept (and may be ignored). The separator is the header's (`delimiter`). A row with another number of
    fields than the header is returned with its problem; a header without a `required` column, or text
    that is not CSV, raises `MalformedCsv`."""
    separator = delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=separator)
    try:
        header = [restore(name).strip() for name in next(reader, [])]
        missing = [name for name in required if name not in header]
        if missing:
            raise MalformedCsv(1, f"the header has no column {', '.join(missing)} (read as "
                                  f"{DELIMITERS[separator]}-separated)")
        start = reader.line_num + 1
        for cells in reader:
            if any(cell.strip() for cell in cells):
                problem = None if len(cells) == len(header) else \
                    f"malformed row: {len(cells)} fields where the header has {len(header)}"
                yield Row(start, {} if problem else {n: restore(c) for n, c in zip(header, cells, strict=True)},
                          problem)
            start = reader.line_num + 1
    except csv.Error as exc:
        raise MalformedCsv(reader.line_num, f"not CSV: {exc}") from None
