"""`linkage review` and `linkage decide`: the review queue's CSV round trip from the command line.

`review --csv` prints the export the Linkage view downloads, the same bytes for the same filter;
a person fills in `decision` (a candidate's id, another id, `none` or `clear`) and `note`, and
`decide --file F` records them all, or, naming each bad line, none (`decide --accept-suggestions`
records a filter's suggestions instead: `linkage.cli.accept`). The person running it is the
decider (`cli:<user>@<host>`, as the run records name whoever triggered a run).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from linkage.cli.accept import accept_options, accepting, cmd_accept
from linkage.cli.commands import settings_of
from linkage.core.csvsafe import decoded
from linkage.core.errors import LinkageError
from linkage.core.models import REVIEW_CATEGORIES, RunState
from linkage.core.words import plural
from linkage.relations import REGISTRY
from linkage.review.intake import DecisionsRefused, import_csv
from linkage.review.pages import ReviewFilter, review_csv, review_page
from linkage.review.quality import quality, quality_lines
from linkage.run.record import default_trigger
from linkage.run.session import Linkage
from linkage.store.review_queue import CATEGORIES, OPEN, STATUSES

#: The largest file `decide --file` reads (the view's upload has the same cap).
MAX_FILE_BYTES = 5 * 1024 * 1024
Option = tuple[tuple[str, ...], dict[str, Any]]


def review_options() -> tuple[Option, ...]:
    return (
        (("--step",), {"choices": list(REGISTRY), "help": "only this step's items"}),
        (("--category",), {"choices": CATEGORIES, "help": "only items of this category"}),
        (("--status",), {"choices": [*STATUSES, "any"], "default": OPEN, "help": f"items in this state (default: "
                                                                                   f"{OPEN})"}),
        (("--min-probability",), {"type": float, "metavar": "P", "help": "only items whose suggestion is at least "
                                                                          "this probable (0 to 1)"}),
        (("--csv",), {"action": "store_true", "help": "print the items as the view's CSV export (to fill in and "
                                                       "import with `linkage decide --file`)"}),
        (("--quality",), {"action": "store_true", "help": "how often people accepted the suggestions, by match "
                                                           "probability, and precision and recall against a seeded "
                                                           "truth"}),
    )


def decide_options() -> tuple[Option, ...]:
    return ((("--file",), {"help": "a review export with its decision (and note) column filled "
                                   f"in (at most {MAX_FILE_BYTES // 1024 // 1024} MB)"}),
            *accept_options())


def _filter(args: argparse.Namespace) -> ReviewFilter:
    category = next((c for c in REVIEW_CATEGORIES if c.value == args.category), None)
    if args.min_probability is not None and not 0 <= args.min_probability <= 1:
        raise LinkageError(f"--min-probability is a probability, 0 to 1, not {args.min_probability:g}")
    return ReviewFilter(step=args.step, category=category, status=None if args.status == "any" else args.status,
                        min_probability=args.min_probability)


def cmd_review(args: argparse.Namespace) -> dict[str, Any] | None:
    """The queue's export on stdout (`--csv`, exactly the view's bytes), or how many items there are."""
    lk = Linkage(settings_of(args))
    try:
        if args.quality:
            return report_quality(lk, args.json)
        selected = _filter(args)
        if args.csv:
            for chunk in review_csv(lk, selected):
                sys.stdout.buffer.write(chunk.encode())
            sys.stdout.flush()
            return None
        page = review_page(lk, selected, size=25)
    finally:
        lk.close()
    if not args.json:
        print(f"review items: {', '.join(f'{status} {n:,}' for status, n in page.counts.items())}")
        for row in page.items:
            print(f"  {row.item_id}  {row.category:10s} {row.status:8s} {len(row.candidates)} candidates  "
                  f"{row.reason or ''}")
    return {"state": RunState.SUCCEEDED.value, "counts": page.counts,
            "items": [row.model_dump(mode="json") for row in page.items]}


def report_quality(lk: Linkage, as_json: bool) -> dict[str, Any]:
    found = quality(lk)
    if not as_json:
        print("\n".join(quality_lines(found)))
    return {"state": RunState.SUCCEEDED.value, **found.model_dump()}


def read_export(path: Path) -> str:
    """A filled-in export's text (`csvsafe.decoded`), or a one-line reason it cannot be read."""
    try:
        if path.is_dir():
            raise LinkageError(f"{path} is a directory: give the filled-in export's file")
        if path.stat().st_size > MAX_FILE_BYTES:
            raise LinkageError(f"{path} is larger than {MAX_FILE_BYTES // 1024 // 1024} MB: split it")
        data = path.read_bytes()
    except FileNotFoundError:
        raise LinkageError(f"{path}: no such file") from None
    except OSError as exc:
        raise LinkageError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    try:
        return decoded(data)
    except ValueError as exc:
        raise LinkageError(f"{path} is {exc}") from None


def cmd_decide(args: argparse.Namespace) -> dict[str, Any]:
    """Record a filled-in export's decisions, all or none; each refused line goes to stderr (or, with
    `--accept-suggestions`, the suggestions of a filter: `linkage.cli.accept`)."""
    if accepting(args):
        return cmd_accept(args)
    path = Path(args.file)
    text = read_export(path)
    lk = Linkage(settings_of(args))
    try:
        lk.reviews.ensure_indexes()
        lk.decisions.ensure_indexes()
        recorded = import_csv(lk, text, by=default_trigger(), via="cli")
    except DecisionsRefused as refused:
        for refusal in refused.refusals:
            print(f"{path}: {refusal}", file=sys.stderr)
        error = f"import refused, nothing recorded: {plural(len(refused.refusals), 'bad line')}"
        return {"state": RunState.FAILED.value, "error": error, "refused": [r.model_dump() for r in refused.refusals]}
    finally:
        lk.close()
    if not args.json:
        kinds = ", ".join(f"{k} {n}" for k, n in recorded.by_kind.items())
        print(f"recorded {plural(recorded.decided, 'decision')} ({kinds}) as {recorded.batch}")
    return {"state": RunState.SUCCEEDED.value, **recorded.model_dump()}
