"""What each `linkage` command does: one handler per command, over the engine's stages and the runner.

A handler gets the parsed arguments and returns the run's report (or a plain
result for `status`, `seed` and `validate`), printing for people itself when
`--json` was not asked for; `linkage.cli.main` parses, prints JSON and decides the
exit code.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pymongo.database import Database

from linkage.core.errors import LinkageError
from linkage.core.models import COUNT_KEYS, RunKind, RunState
from linkage.core.people import person
from linkage.core.settings import Settings
from linkage.core.words import plural, size, tally
from linkage.dev.seed import seed
from linkage.dev.seed_truth import truth_csv, truth_rows
from linkage.dev.server import serve_forever
from linkage.engine.coverage import shown
from linkage.mongo.connect import connect
from linkage.relations import REGISTRY
from linkage.report.status import status
from linkage.run.params import MigrationParams
from linkage.run.record import RunReport, default_trigger
from linkage.run.record_parts import DecisionsRecord, RollbackOutcome
from linkage.run.session import Linkage
from linkage.stages.approval import check_approver, own
from linkage.stages.executor import migrate, undo_run
from linkage.stages.retention import inventory, prune
from linkage.store.decisions import DecisionStatus
from linkage.validation.metrics import measure


def settings_of(args: argparse.Namespace) -> Settings:
    return Settings.from_env(mongo_uri=getattr(args, "uri", None), db=getattr(args, "db", None),
                             backup_dir=getattr(args, "backup_dir", None))


def params_of(args: argparse.Namespace, *, dry_run: bool) -> MigrationParams:
    """The run's parameters: the flags given, the model's (and the registry's) defaults for the rest."""
    names = ["steps", "batch_size", "partitions", "allow_empty", *(t.parameter for t in REGISTRY.thresholds())]
    given = {name: getattr(args, name, None) for name in names}
    return MigrationParams(dry_run=dry_run, rollback_on_failure=not getattr(args, "no_rollback", False),
                           **{key: value for key, value in given.items() if value is not None})


def print_report(report: RunReport, docs_dir: Path) -> None:
    print(f"run {report.run_id}: {report.state}{' (dry run)' if report.dry_run else ''}")
    for step, counts in report.steps.items():
        print(f"  {step:16s} " + "  ".join(f"{k}={counts.get(k, 0)}" for k in COUNT_KEYS))
    if report.validation:
        failed = [e.name for e in report.validation.failed]
        verdict = "passed" if report.validation.success else \
            ("not met yet: " if report.dry_run else "FAILED: ") + ", ".join(failed)
        label = "validation of the data as it stands (a dry run links nothing)" if report.dry_run else "validation"
        print(f"  {label}: {verdict} (data docs: {docs_dir / (report.validation.data_docs or '')})")
    if report.drift and report.drift.total:
        kept = "a real run records it as review items" if report.dry_run else "now review items"
        print(f"  drift found (not caused by this run; {kept}): {tally(report.drift.by_expectation)}")
    if report.backup:
        print(f"  backup: {report.backup}")
    if report.rollback:
        print(f"  rollback: {rollback_words(report.rollback)}")
    if report.decisions:
        print_decisions(report.decisions)
    if report.error:
        print(f"  error: {report.error}")


def rollback_words(outcome: RollbackOutcome) -> str:
    """What a rollback did, as people read it: `12 fields restored, 1 kept (the app changed it since)`."""
    words = [f"{plural(outcome.restored, 'field')} restored"]
    if outcome.already_rolled_back:
        return f"done earlier ({words[0]}): nothing touched again"
    if outcome.already:
        words.append(f"{outcome.already} already restored")
    if outcome.kept:
        words.append(f"{outcome.kept} kept (the app changed {'it' if outcome.kept == 1 else 'them'} since)")
    return ", ".join(words) + (f"; stopped: {outcome.error}" if outcome.error else "")


def print_decisions(record: DecisionsRecord) -> None:
    """A run's part in people's decisions: what it found to do, who approved it, what became of them, and who
    decided and approved what it wrote."""
    if (found := record.preview) is not None:
        print(f"  decisions: {found.total} pending ({plural(found.links, 'link')}, {found.none} no match, "
              f"{plural(found.clears, 'clear')}, {found.stale} stale), decided by "
              f"{', '.join(found.deciders) or 'nobody'}")
    if (approval := record.approval) is not None:
        verb = "approved" if approval.approved else "rejected"
        print(f"  {verb} by {approval.by or 'nobody in time'} ({approval.via})"
              + (f"; {plural(approval.own, 'decision')} of theirs left pending for another person" if approval.own
                 else ""))
    if record.outcome:
        print("  decisions now: " + ", ".join(f"{n} {status}" for status, n in record.outcome.items()))
    for people in record.people:
        print(f"  written: {plural(people.count, 'decision')} decided by {people.by}, approved by "
              f"{people.approved_by or 'nobody'}")


def print_status(result: dict[str, Any]) -> None:
    """`linkage status` for people: each coverage with what it counts, the runs in aligned columns."""
    counts = {relation.name: relation.counts for relation in REGISTRY.relations()}
    server = result["concerns"]
    print(f"server: {server['topology']}; app writes {server['app']['write_concern']}, reads "
          f"{server['app']['read_preference']}; bookkeeping writes {server['bookkeeping']['write_concern']}, reads "
          f"{server['bookkeeping']['read_preference']} ({server['bookkeeping']['read_concern']} read concern)")
    for relation, cov in result["coverage"].items():
        of = f" of {counts[relation]}" if counts.get(relation) else ""
        print(f"{relation:28s} {cov['linked']:.0f}/{cov['total']:.0f} linked ({shown(cov)}){of}")
    items = result["open_review_items"]
    print("open review items:" + ("" if items else " none"))
    for step, by_category in items.items():
        print(f"  {step:16s} {tally(by_category)}")
    print("recent runs:")
    runs = result["recent_runs"]
    width = max((len(run["_id"]) for run in runs), default=0)
    marks = [_marks(run) for run in runs]
    marked = max(map(len, marks), default=0)
    for run, mark in zip(runs, marks, strict=True):
        print(f"  {run['_id']:{width}s}  {run['state']:15s} {mark:{marked}s}  {run.get('triggered_by', '')}".rstrip())
    print(f"lock: {'free' if not result['lock'] else result['lock'].get('run_id')}")
    if result["paging"]:
        print(f"paging: {result['paging']['why']}")
    room = result["backups"]
    print(f"backups: {size(room['used_bytes'])} used, {size(room['free_bytes'])} free at {room['path']}")


def _marks(run: dict[str, Any]) -> str:
    """What `status` says beside a run's state: `DRY RUN`, `drift found: 24`."""
    drift = (run.get("drift") or {}).get("total")
    return " ".join(m for m in ("DRY RUN" if run.get("dry_run") else "", f"drift found: {drift}" if drift else "")
                    if m)


def _run(args: argparse.Namespace, *, kind: RunKind, dry_run: bool) -> RunReport:
    lk = Linkage(settings_of(args))
    try:
        return migrate(lk, params_of(args, dry_run=dry_run), default_trigger(), kind=kind,
                       new=getattr(args, "new", False), show_progress=not args.quiet)
    finally:
        lk.close()


def cmd_plan(args: argparse.Namespace) -> RunReport:
    return _run(args, kind=RunKind.MIGRATE, dry_run=True)


def cmd_migrate(args: argparse.Namespace) -> RunReport:
    return _run(args, kind=RunKind.MIGRATE, dry_run=False)


def cmd_reconcile(args: argparse.Namespace) -> RunReport:
    return _run(args, kind=RunKind.RECONCILE, dry_run=args.dry_run)


def _nothing_to_apply(lk: Linkage, me: str) -> str | None:
    """Why `me` has nothing to apply (none pending, or only their own), in one line; None: there is work."""
    check_approver(lk, me)
    pending = lk.decisions.pending()
    if lk.decisions.pending(status=DecisionStatus.APPROVED) or len(own(pending, me)) < len(pending):
        return None
    if not pending:
        return "no pending decisions: nothing to apply (decide in the Linkage view or with `linkage decide`)"
    are = "is" if len(pending) == 1 else "are all"
    return (f"nothing to apply: {'the' if len(pending) == 1 else 'the ' + str(len(pending))} pending "
            f"decision{'' if len(pending) == 1 else 's'} {are} {person(me)}'s own; another person must apply "
            f"{'it' if len(pending) == 1 else 'them'}")


def cmd_apply_decisions(args: argparse.Namespace) -> RunReport | dict[str, Any]:
    """People's decisions carried out now, the person running this the approver of the others' decisions
    (their own wait for someone else; `linkage_apply_decisions` asks in Airflow); with nothing they may
    approve, no run at all."""
    lk = Linkage(settings_of(args))
    try:
        lk.require_app()
        why = _nothing_to_apply(lk, default_trigger())
    finally:
        lk.close()
    if why:
        if not args.json:
            print(why)
        return {"run_id": None, "state": RunState.SUCCEEDED.value, "steps": {}, "decisions": None, "reason": why}
    return _run(args, kind=RunKind.DECISIONS, dry_run=args.dry_run)


def cmd_rollback(args: argparse.Namespace) -> RunReport:
    lk = Linkage(settings_of(args))
    try:
        outcome = undo_run(lk, args.run_id)  # refuses what cannot be rolled back, in one line
        run_id = lk.runs.resolve(args.run_id)
        if outcome.already_rolled_back and not args.json:
            print(f"run {run_id} was already rolled back: nothing to do")
        report = lk.record(run_id).report()
        return report.model_copy(update={"rollback": outcome}) if outcome.already_rolled_back else report
    finally:
        lk.close()


def cmd_validate(args: argparse.Namespace) -> dict[str, Any]:
    """Validate the data as it is (no run: every violation counts); coverage thresholds from the flags."""
    from linkage.validation.gate import validate

    lk = Linkage(settings_of(args))
    try:
        lk.require_app()
        params = params_of(args, dry_run=True)
        outcome = validate(measure(lk.db).measured, params, lk.settings.docs_dir,
                           f"validate-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}", lk.settings.db, of_a_run=False)
    finally:
        lk.close()
    if not args.json:
        print("the data as it stands, judged without a run: every violation counts (only a run's own validation "
              "tells its writes from drift)")
        print(outcome.table())
        print(f"data docs: {lk.settings.docs_dir / (outcome.data_docs or '')}")
    failed = [f"{e.name} ({e.shown}, expected {e.threshold})" for e in outcome.failed]
    return {"run_id": None, "state": (RunState.SUCCEEDED if outcome.success else RunState.FAILED).value, "steps": {},
            "validation": outcome.as_record(),
            "error": f"the data breaks {plural(len(failed), 'expectation')}: {', '.join(failed)}" if failed else None}


def cmd_status(args: argparse.Namespace) -> dict[str, Any]:
    lk = Linkage(settings_of(args))
    try:
        lk.require_app()
        result = status(lk)
    finally:
        lk.close()
    if not args.json:
        print_status(result)
    return {"state": RunState.SUCCEEDED.value, **result}


def cmd_backups(args: argparse.Namespace) -> dict[str, Any]:
    """Every backup, whether it is still needed and why; `prune` deletes the others (`--dry-run`: only says)."""
    lk = Linkage(settings_of(args))
    try:
        if args.action == "prune":
            pruned = prune(lk, dry_run=args.dry_run)
            entries, verb = pruned.deleted, "would delete" if args.dry_run else "deleted"
        else:
            entries, verb = inventory(lk), ""
    finally:
        lk.close()
    if not args.json:
        if verb:
            print(f"{verb} {plural(len(entries), 'backup')} ({size(sum(e.bytes for e in entries))})"
                  + ("" if entries else ": nothing to delete (`linkage backups` says why each is kept)"))
        for e in entries:
            made = f"{e.created_at:%Y-%m-%d %H:%M}" if e.created_at else "-"
            print(f"  {made}  {e.kind or '?':9s} {e.scope or '?':8s} {size(e.bytes):>10s}  "
                  f"{'verified' if e.verified else 'unverified':10s} {'needed' if e.needed else 'not needed'}: "
                  f"{e.why}  {e.path}")
    return {"state": RunState.SUCCEEDED.value, "backups": [e.model_dump(mode="json") for e in entries]}


def cmd_seed(args: argparse.Namespace) -> dict[str, Any] | None:
    settings = settings_of(args)
    client = connect(settings)
    try:
        if args.truth:
            return print_truth(client[settings.db], args.json)
        result = seed(client[settings.db], customers=args.customers, seed_value=args.seed, replace=args.replace)
    finally:
        client.close()
    if not args.json:
        print(f"seeded {settings.db}: {tally(result['documents'])}")
        for step, counts in result["planted"].items():
            print(f"  planted for {step}: {tally(counts)}")
        print(f"  bad inputs (documents, by field): {tally(result['bad_inputs'])}")
    return {"state": RunState.SUCCEEDED.value, **result}


def print_truth(db: Database, as_json: bool) -> dict[str, Any] | None:
    """`linkage seed --truth`: the planted truth, as CSV on stdout (or in the JSON line)."""
    if as_json:
        rows = [{**row, "document_id": row.pop("_id")} for row in truth_rows(db)]
        return {"state": RunState.SUCCEEDED.value, "truth": rows}
    for chunk in truth_csv(db):
        sys.stdout.write(chunk)
    return None


def cmd_serve_db(args: argparse.Namespace) -> None:
    if serve_forever(args.port, Path(args.data_dir)):
        raise LinkageError("embedded server exited unexpectedly")
