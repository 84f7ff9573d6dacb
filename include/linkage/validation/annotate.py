"""What a run's Data Docs say about themselves, which GX cannot know: what was judged, and on what.

GX renders the site from the validation results; it knows neither that a dry
run measured the data as it stands (so its "Failed" suites are findings, not a
verdict), nor what the one-row data asset is, and it ends every page with its
newsletter's "Subscribe". After the site is built (and made offline), each page
gets a preface saying what the run judged, the data asset named, and the
project's footer. Pure text edits of the pages GX wrote, idempotent.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

#: Where a page's content starts (GX 1.x's `page.j2` and `index_page.j2`): the preface goes first in it.
_CONTENT = '<div class="container-fluid pt-4 pb-4 pl-5 pr-5">'
_GX_FOOTER = re.compile(r"<footer>\s*<p>Stay current on everything GX.*?</footer>", re.S)
_NO_ASSET = re.compile(r"Data asset: None<br>")
PREFACE_ID = "linkage-preface"


@dataclass(frozen=True)
class Annotation:
    """What every page of one run's site says beside GX's rendering."""

    preface: str  # HTML: what the run judged, at the top of every page
    asset: str  # the data asset, in words
    footer: str  # HTML: the project's footer
    #: The run's coverage thresholds: a description's `$min_order_coverage` is the run's value (GX leaves a
    #: placeholder it has no parameter for as it is, and the suite is shared by runs of any threshold).
    thresholds: Mapping[str, float] = field(default_factory=dict)

    def page(self, text: str) -> str:
        """One page, annotated (an already annotated page comes back unchanged)."""
        if PREFACE_ID not in text:
            block = f'<div id="{PREFACE_ID}" class="alert alert-info" role="note">{self.preface}</div>'
            text = text.replace(_CONTENT, _CONTENT + block, 1)
        for name, value in self.thresholds.items():
            text = text.replace(f"${name}", f"{value:g} ({name})")
        text = _NO_ASSET.sub(lambda m: f"Data asset: {html.escape(self.asset)}<br>", text)
        return _GX_FOOTER.sub(lambda m: f"<footer>{self.footer}</footer>", text)

    def site(self, root: Path) -> int:
        """Annotate every page under `root`; how many changed."""
        changed = 0
        for path in sorted(root.rglob("*.html")):
            text = path.read_text(encoding="utf-8")
            out = self.page(text)
            if out != text:
                path.write_text(out, encoding="utf-8")
                changed += 1
        return changed


def annotation(run_name: str, *, dry_run: bool, database: str, gx_version: str,
               thresholds: Mapping[str, float]) -> Annotation:
    """The words for one run's site: a dry run (or a plain `linkage validate`) measured the data as it stands;
    a real run was judged on what it wrote (CONTRACT §6)."""
    run = html.escape(run_name)
    if dry_run:
        preface = (
            f"<strong>{run} measured the data as it stands; it judged nothing.</strong> A dry run (like "
            "<code>linkage validate</code>) links nothing, so a suite marked Failed here is what the data holds "
            "now: coverage before the links are written, and violations already in the data. A real run judges "
            "what it writes: <code>linkage_run</code> fails it (and rolls it back) for a violation in a document "
            "it wrote or coverage below its threshold after linking; every other violation is drift "
            "(<code>linkage_drift</code>): reported, queued for review, and the run kept.")
    else:
        preface = (
            f"<strong>Run {run} was judged on what it wrote.</strong> <code>linkage_run</code> decides whether it "
            "is kept: a violation in a document this run wrote, or coverage below its threshold, fails it. "
            "<code>linkage_drift</code> reports what the run found but did not cause: drift never fails a run.")
    footer = (f"<p>linkage: the Data Docs of {run} in database <code>{html.escape(database)}</code>, rendered "
              f"by Great Expectations {html.escape(gx_version)}. The rules are docs/CONTRACT.md §6; what to do "
              "when one fails, docs/RUNBOOK.md.</p>")
    asset = f"linkage's measurements of database {database} (one row: an observation per rule)"
    return Annotation(preface=preface, asset=asset, footer=footer, thresholds=dict(thresholds))
