"""`linkage`: the command line over the same engine the DAGs run (CONTRACT §7).

Every command takes `--uri`/`--db` (or LINKAGE_MONGO_URI / LINKAGE_DB) and
`--json`, which prints one JSON object as the last line of stdout. Exit code 0
means success; anything else comes with a one-line reason on stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pymongo.errors import PyMongoError

from linkage import pipeline
from linkage.database import connect
from linkage.errors import LinkageError
from linkage.masking import install_log_redaction, redact
from linkage.models import COUNT_KEYS, MigrationParams, RunKind, RunState, Step
from linkage.runs import default_trigger
from linkage.seed import seed
from linkage.server import serve_forever
from linkage.settings import Settings
from linkage.status import status
from linkage.validation.metrics import measure

log = logging.getLogger("linkage")
Handler = Callable[[argparse.Namespace], dict[str, Any] | None]
Option = tuple[tuple[str, ...], dict[str, Any]]


def _described(name: str, **extra: Any) -> dict[str, Any]:
    """argparse options for a MigrationParams field: its description as help; unset means the model's default."""
    info = MigrationParams.model_fields[name]
    default = info.get_default(call_default_factory=True)
    shown = ",".join(map(str, default)) if isinstance(default, list) else default
    return {"default": None, "help": f"{info.description} (default: {shown})", **extra}


CONNECTION: tuple[Option, ...] = (
    (("--uri",), {"help": "MongoDB URI (default: LINKAGE_MONGO_URI or the embedded default)"}),
    (("--db",), {"help": "database name (default: LINKAGE_DB or 'app')"}),
    (("--json",), {"action": "store_true", "help": "print one JSON object as the last line"}),
    (("--quiet",), {"action": "store_true", "help": "no progress on stderr"}),
)
THRESHOLDS: tuple[Option, ...] = (
    (("--min-order-coverage",), _described("min_order_coverage", type=float)),
    (("--min-user-coverage",), _described("min_user_coverage", type=float)),
)
RUN: tuple[Option, ...] = (
    (("--steps",), _described("steps", type=lambda text: [Step(s) for s in text.split(",")],
                              metavar=",".join(Step))),
    (("--batch-size",), _described("batch_size", type=int)),
    (("--partitions",), _described("partitions", type=int)),
    (("--backup-dir",), {"help": "where backups go (default: LINKAGE_BACKUP_DIR, or backups/ under LINKAGE_HOME)"}),
    (("--no-rollback",), {"action": "store_true", "help": "keep a run that fails validation (it ends failed)"}),
    *THRESHOLDS,
)
NEW = (("--new",), {"action": "store_true", "help": "start a new run instead of resuming the newest unfinished one"})
DRY_RUN = (("--dry-run",), {"action": "store_true", "help": MigrationParams.model_fields["dry_run"].description})


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.from_env(mongo_uri=args.uri, db=args.db, backup_dir=getattr(args, "backup_dir", None))


def _params(args: argparse.Namespace, *, dry_run: bool) -> MigrationParams:
    """The run's parameters: the flags given, the model's defaults for the rest."""
    given = {name: getattr(args, name, None) for name in
             ("steps", "batch_size", "partitions", "min_order_coverage", "min_user_coverage")}
    return MigrationParams(dry_run=dry_run, rollback_on_failure=not getattr(args, "no_rollback", False),
                           **{key: value for key, value in given.items() if value is not None})


def _linkage(args: argparse.Namespace) -> pipeline.Linkage:
    return pipeline.Linkage(_settings(args))


def _print_report(result: dict[str, Any], docs_dir: Path) -> None:
    print(f"run {result['run_id']}: {result['state']}{' (dry run)' if result.get('dry_run') else ''}")
    for step, counts in result.get("steps", {}).items():
        print(f"  {step:16s} " + "  ".join(f"{k}={counts.get(k, 0)}" for k in COUNT_KEYS))
    dry = bool(result.get("dry_run"))
    validation = result.get("validation")
    if validation:
        verdict = "passed" if validation["success"] else "FAILED: " + ", ".join(validation.get("failed", []))
        label = "validation of the data as it stands (a dry run links nothing)" if dry else "validation"
        print(f"  {label}: {verdict} (data docs: {docs_dir / validation['data_docs']})")
    drift = result.get("drift") or {}
    if drift.get("total"):
        kept = "a real run records it as review items" if dry else "now review items"
        print(f"  drift found (not caused by this run; {kept}): {drift['by_expectation']}")
    for key in ("backup", "rollback", "error"):
        if result.get(key):
            print(f"  {key}: {result[key]}")


# -- commands --------------------------------------------------------------------------------------------------

def _run(args: argparse.Namespace, *, kind: RunKind, dry_run: bool) -> dict[str, Any]:
    lk = _linkage(args)
    try:
        return pipeline.migrate(lk, _params(args, dry_run=dry_run), default_trigger(), kind=kind,
                                new=getattr(args, "new", False), show_progress=not args.quiet)
    finally:
        lk.close()


def cmd_plan(args: argparse.Namespace) -> dict[str, Any]:
    return _run(args, kind=RunKind.MIGRATE, dry_run=True)


def cmd_migrate(args: argparse.Namespace) -> dict[str, Any]:
    return _run(args, kind=RunKind.MIGRATE, dry_run=False)


def cmd_reconcile(args: argparse.Namespace) -> dict[str, Any]:
    return _run(args, kind=RunKind.RECONCILE, dry_run=args.dry_run)


def cmd_rollback(args: argparse.Namespace) -> dict[str, Any]:
    lk = _linkage(args)
    try:
        run_id = lk.runs.resolve(args.run_id)
        if lk.record(run_id).dry_run:
            raise LinkageError(f"run {run_id} was a dry run: it wrote nothing to roll back")
        with lk.hold(run_id) as lease:
            outcome = pipeline.rollback(lk, run_id, lease.guard)
        if outcome.get("already_rolled_back") and not args.json:
            print(f"run {run_id} was already rolled back: nothing to do")
        return pipeline.report(lk, run_id)
    finally:
        lk.close()


def cmd_validate(args: argparse.Namespace) -> dict[str, Any]:
    """Validate the data as it is (no run: every violation counts); coverage thresholds from the flags."""
    from linkage.validation.gate import validate

    lk = _linkage(args)
    try:
        params = _params(args, dry_run=True)
        outcome = validate(measure(lk.db).measured, params, lk.settings.docs_dir,
                           f"validate-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}")
    finally:
        lk.close()
    if not args.json:
        print(outcome.table())
        print(f"data docs: {lk.settings.docs_dir / (outcome.data_docs or '')}")
    return {"run_id": None, "state": (RunState.SUCCEEDED if outcome.success else RunState.FAILED).value, "steps": {},
            "validation": outcome.as_record()}


def cmd_status(args: argparse.Namespace) -> dict[str, Any]:
    lk = _linkage(args)
    try:
        result = status(lk)
    finally:
        lk.close()
    if not args.json:
        for relation, cov in result["coverage"].items():
            print(f"{relation:28s} {cov['linked']}/{cov['total']} linked ({cov['ratio']:.1%})")
        print(f"open review items: {result['open_review_items'] or 'none'}")
        print("recent runs:")
        for run in result["recent_runs"]:
            drift = (run.get("drift") or {}).get("total")
            marks = " ".join(m for m in ("DRY RUN" if run.get("dry_run") else "",
                                         f"drift found: {drift}" if drift else "") if m)
            print(f"  {run['_id']}  {run['state']:15s} {marks:24s} {run.get('triggered_by', '')}")
        print(f"lock: {'free' if not result['lock'] else result['lock'].get('run_id')}")
    return {"state": RunState.SUCCEEDED.value, **result}


def cmd_seed(args: argparse.Namespace) -> dict[str, Any]:
    settings = _settings(args)
    client = connect(settings)
    try:
        result = seed(client[settings.db], customers=args.customers, seed_value=args.seed, replace=args.replace)
    finally:
        client.close()
    if not args.json:
        print(f"seeded {settings.db}: {result['documents']}")
        for step, counts in result["planted"].items():
            print(f"  planted {step}: {counts}")
        print(f"  bad inputs: {result['bad_inputs']}")
    return {"state": RunState.SUCCEEDED.value, **result}


def cmd_serve_db(args: argparse.Namespace) -> None:
    if serve_forever(args.port, Path(args.data_dir)):
        raise LinkageError("embedded server exited unexpectedly")


@dataclass(frozen=True)
class Command:
    handler: Handler
    help: str
    options: tuple[Option, ...] = ()
    #: The state a run must end in for the command to succeed.
    succeeded: frozenset[str] = field(default_factory=lambda: frozenset({RunState.SUCCEEDED.value}))


COMMANDS: dict[str, Command] = {
    "plan": Command(cmd_plan, "dry run of a migration: compute and report every count, write nothing to the app", RUN),
    "migrate": Command(cmd_migrate, "backup, indexes, backfills, validation; resumes the newest unfinished run "
                                    "unless --new", (*RUN, NEW)),
    "reconcile": Command(cmd_reconcile, "the nightly job by hand: repair one-sided pairs, link what is still unlinked",
                         (*RUN, NEW, DRY_RUN)),
    "rollback": Command(cmd_rollback, "undo a run through its journal, keeping the app's later writes",
                        ((("--run-id",), {"required": True, "help": "the linkage run id, or its Airflow DAG run id"}),),
                        frozenset({RunState.ROLLED_BACK.value})),
    "validate": Command(cmd_validate, "run the expectation suites on the data as it is", THRESHOLDS),
    "status": Command(cmd_status, "link coverage, open review items, recent runs, lock holder"),
    "seed": Command(cmd_seed, "fill a database with deterministic dirty demo data", (
        (("--customers",), {"type": int, "default": 10_000}), (("--seed",), {"type": int, "default": 7}),
        (("--replace",), {"action": "store_true", "help": "drop existing app collections first"}))),
    "serve-db": Command(cmd_serve_db, "run the embedded MongoDB wire-protocol server until Ctrl-C", (
        (("--port",), {"type": int, "default": 27017}), (("--data-dir",), {"default": "var/db"}))),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="linkage", description=(__doc__ or "").splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, command in COMMANDS.items():
        cmd = sub.add_parser(name, help=command.help, description=command.help)
        for flags, options in (*CONNECTION, *command.options):
            cmd.add_argument(*flags, **options)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s",
                        stream=sys.stderr)
    log.setLevel(logging.INFO)
    install_log_redaction()
    args = build_parser().parse_args(argv)
    command = COMMANDS[args.command]
    try:
        result = command.handler(args)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        print(f"linkage {args.command}: invalid parameters: {problems}", file=sys.stderr)
        return 1
    except (LinkageError, ValueError) as exc:
        print(f"linkage {args.command}: {redact(str(exc).splitlines()[0])}", file=sys.stderr)
        return 1
    except PyMongoError as exc:
        print(f"linkage {args.command}: database error: {redact(str(exc).splitlines()[0])[:300]}", file=sys.stderr)
        return 1
    if result is None:
        return 0
    if args.json:
        print(json.dumps(result, default=str, sort_keys=True))
    elif result.get("run_id"):
        _print_report(result, _settings(args).docs_dir)
    if result.get("state") not in command.succeeded:
        print(f"linkage {args.command}: run ended {result.get('state')}: {result.get('error') or 'see the run record'}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
