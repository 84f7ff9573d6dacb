"""`linkage decide --accept-suggestions --min-probability P [--step S] [--category C]`: the model's suggestions
of a filter accepted as the CLI's person's decisions (`linkage.review.acceptance`).

It says first what it is about to record (how many, by step, category and suggested kind, the band of
probabilities), then records them all, or, naming each refused item, none. Like every decision they wait
for an approved run: `linkage apply-decisions` by another person.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from linkage.cli.commands import settings_of
from linkage.core.errors import LinkageError
from linkage.core.models import REVIEW_CATEGORIES, RunState
from linkage.relations import REGISTRY
from linkage.review.acceptance import accept_suggestions, preview
from linkage.review.intake import MAX_DECISIONS, DecisionsRefused
from linkage.review.pages import ReviewFilter
from linkage.run.record import default_trigger
from linkage.run.session import Linkage
from linkage.store.review_queue import CATEGORIES

Option = tuple[tuple[str, ...], dict[str, Any]]


def accept_options() -> tuple[Option, ...]:
    return (
        (("--accept-suggestions",), {"action": "store_true", "help": "record the suggestion of every open item at "
                                     "or above --min-probability as your decision (instead of --file; at most "
                                     f"{MAX_DECISIONS:,} at once)"}),
        (("--min-probability",), {"type": float, "metavar": "P", "help": "with --accept-suggestions: the lowest "
                                  "match probability accepted, 0 to 1"}),
        (("--step",), {"choices": list(REGISTRY), "help": "with --accept-suggestions: only this step's items"}),
        (("--category",), {"choices": CATEGORIES, "help": "with --accept-suggestions: only items of this category"}),
    )


def accepting(args: argparse.Namespace) -> bool:
    """Whether `decide` accepts suggestions (or reads a file); a wrong mix of options is one line's error."""
    if args.file and args.accept_suggestions:
        raise LinkageError("give either --file or --accept-suggestions, not both")
    if not args.file and not args.accept_suggestions:
        raise LinkageError("give --file F (a filled-in export) or --accept-suggestions --min-probability P")
    if args.accept_suggestions and args.min_probability is None:
        raise LinkageError("--accept-suggestions needs --min-probability P (0 to 1), the lowest probability accepted")
    if args.min_probability is not None and not 0 <= args.min_probability <= 1:
        raise LinkageError(f"--min-probability is a probability, 0 to 1, not {args.min_probability:g}")
    if args.file and (args.min_probability is not None or args.step or args.category):
        raise LinkageError("--min-probability, --step and --category go with --accept-suggestions, not --file")
    return bool(args.accept_suggestions)


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} {n:,}" for name, n in sorted(counts.items())) or "none"


def cmd_accept(args: argparse.Namespace) -> dict[str, Any]:
    """Say what will be recorded, then record it, all or none; each refused item goes to stderr."""
    category = next((c for c in REVIEW_CATEGORIES if c.value == args.category), None)
    selected, p, by = ReviewFilter(step=args.step, category=category), args.min_probability, default_trigger()
    lk = Linkage(settings_of(args))
    try:
        lk.reviews.ensure_indexes()
        lk.decisions.ensure_indexes()
        shown = preview(lk, selected, p)
        if not shown.taken:
            raise LinkageError(f"no open item{' of this filter' if args.step or args.category else ''} has a "
                               f"suggestion at p >= {p:g}: nothing to accept")
        if not args.json:
            band = f" ({shown.lowest:.3f} to {shown.highest:.3f})" if shown.taken else ""
            print(f"accepting {shown.taken:,} suggestion{'s' if shown.taken != 1 else ''} at p >= {p:g}{band} "
                  f"as {by}:\n  by step: {_counts(shown.by_step)}\n  by category: {_counts(shown.by_category)}\n"
                  f"  suggested: {_counts(shown.by_kind)}")
            if shown.left:
                print(f"  the filter holds {shown.held:,}: the other {shown.left:,} wait for the next acceptance")
        accepted = accept_suggestions(lk, selected, p, by=by, via="cli")
    except DecisionsRefused as refused:
        for refusal in refused.refusals:
            print(f"item {refusal.item_id or ''}: {refusal.reason}", file=sys.stderr)
        return {"state": RunState.FAILED.value, "error": f"nothing recorded: {len(refused.refusals)} refused",
                "refused": [r.model_dump() for r in refused.refusals]}
    finally:
        lk.close()
    if not args.json:
        print(f"recorded {accepted.decided:,} decision{'s' if accepted.decided != 1 else ''} "
              f"({_counts(accepted.by_kind)}) as {accepted.batch}; they wait for an approved run "
              "(`linkage apply-decisions` by another person)")
    return {"state": RunState.SUCCEEDED.value, **accepted.model_dump(), "preview": shown.model_dump()}
