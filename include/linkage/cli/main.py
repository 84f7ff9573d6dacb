"""`linkage`: the command line over the same engine the DAGs run (CONTRACT §7).

Every command that reads a database takes `--uri`/`--db` (or LINKAGE_MONGO_URI
/ LINKAGE_DB) and `--json`, which prints one JSON object as the last line of
stdout. Exit code 0 means success; anything else comes with a one-line reason
on stderr. A run's options come from `MigrationParams` and the registry (one
flag per coverage threshold), so the help says what the Params form says.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from pymongo.errors import PyMongoError

from linkage.cli.commands import (
    cmd_apply_decisions,
    cmd_backups,
    cmd_migrate,
    cmd_plan,
    cmd_reconcile,
    cmd_rollback,
    cmd_seed,
    cmd_serve_db,
    cmd_status,
    cmd_validate,
    print_report,
    settings_of,
)
from linkage.cli.review import cmd_decide, cmd_review, decide_options, review_options
from linkage.core.errors import LinkageError
from linkage.core.mask import install_log_redaction, redact
from linkage.core.models import RunState
from linkage.mongo.connect import describe
from linkage.relations import REGISTRY
from linkage.run.params import MigrationParams
from linkage.run.record import RunReport

log = logging.getLogger("linkage")
Outcome = RunReport | dict[str, Any]
Handler = Callable[[argparse.Namespace], Outcome | None]
Option = tuple[tuple[str, ...], dict[str, Any]]


def _described(name: str, **extra: Any) -> dict[str, Any]:
    """argparse options for a MigrationParams field: its description as help; unset means the model's default."""
    info = MigrationParams.model_fields[name]
    default = info.get_default(call_default_factory=True)
    shown = ",".join(map(str, default)) if isinstance(default, list) else default
    return {"default": None, "help": f"{info.description} (default: {shown})", **extra}


def _steps(text: str) -> list[str]:
    """`--steps a,b`: registered step names only, or argparse's one-line error listing them."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in REGISTRY]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown step {', '.join(map(repr, unknown)) or repr(text)}: "
                                         f"choose from {', '.join(REGISTRY)}")
    return names


def _thresholds() -> tuple[Option, ...]:
    """One flag per registered coverage threshold, e.g. `--min-order-coverage`."""
    return tuple(((f"--{t.parameter.replace('_', '-')}",),
                  {"type": float, "default": None, "dest": t.parameter, "help": f"{t.description} (default: "
                                                                                f"{t.default})"})
                 for t in REGISTRY.thresholds())


CONNECTION: tuple[Option, ...] = (
    (("--uri",), {"help": "MongoDB URI (default: LINKAGE_MONGO_URI or the embedded default)"}),
    (("--db",), {"help": "database name (default: LINKAGE_DB or 'app')"}),
    (("--json",), {"action": "store_true", "help": "print one JSON object as the last line"}),
)
QUIET: Option = (("--quiet",), {"action": "store_true", "help": "no progress on stderr"})
NEW: Option = (("--new",), {"action": "store_true",
                            "help": "start a new run instead of resuming the newest unfinished one"})
DRY_RUN: Option = (("--dry-run",), {"action": "store_true",
                                    "help": MigrationParams.model_fields["dry_run"].description})
ALLOW_EMPTY: Option = (("--allow-empty",), {"action": "store_true", "default": None,
                                            "help": MigrationParams.model_fields["allow_empty"].description})
WRITES: tuple[Option, ...] = (
    (("--backup-dir",), {"help": "where backups go (default: LINKAGE_BACKUP_DIR, or backups/ under LINKAGE_HOME)"}),
    (("--no-rollback",), {"action": "store_true", "help": "keep a run that fails validation (it ends failed)"}),
)


def _run_options() -> tuple[Option, ...]:
    return ((("--steps",), _described("steps", type=_steps, metavar=",".join(REGISTRY))),
            (("--batch-size",), _described("batch_size", type=int)),
            (("--partitions",), _described("partitions", type=int)), QUIET, *_thresholds(), ALLOW_EMPTY)


@dataclass(frozen=True)
class Command:
    handler: Handler
    help: str
    options: Callable[[], tuple[Option, ...]]
    #: The state a run must end in for the command to succeed.
    succeeded: frozenset[str] = field(default_factory=lambda: frozenset({RunState.SUCCEEDED.value}))


COMMANDS: dict[str, Command] = {
    "plan": Command(cmd_plan, "dry run of a migration: compute and report every count, write nothing to the app",
                    lambda: (*CONNECTION, *_run_options())),
    "migrate": Command(cmd_migrate, "backup, indexes, backfills, validation; resumes the newest unfinished run "
                                    "unless --new", lambda: (*CONNECTION, *_run_options(), *WRITES, NEW)),
    "reconcile": Command(cmd_reconcile, "the nightly job by hand: repair one-sided pairs, link what is still unlinked",
                         lambda: (*CONNECTION, *_run_options(), *WRITES, NEW, DRY_RUN)),
    "apply-decisions": Command(cmd_apply_decisions, "carry out the recorded review decisions as a run (backup, "
                                                    "journal, validation, rollback); you are the approver",
                               lambda: (*CONNECTION, QUIET, *WRITES, NEW, DRY_RUN)),
    "rollback": Command(cmd_rollback, "undo a run through its journal, keeping the app's later writes",
                        lambda: (*CONNECTION, (("--run-id",), {"required": True, "help": "the linkage run id, or "
                                                                                          "its Airflow DAG run id"})),
                        frozenset({RunState.ROLLED_BACK.value})),
    "validate": Command(cmd_validate, "run the expectation suites on the data as it is",
                        lambda: (*CONNECTION, *_thresholds(), ALLOW_EMPTY)),
    "status": Command(cmd_status, "link coverage, open review items, recent runs, lock holder", lambda: CONNECTION),
    "backups": Command(cmd_backups, "list the backups, whether each is still needed and why; `prune` deletes the rest",
                       lambda: (*CONNECTION,
                                (("action",), {"nargs": "?", "choices": ["list", "prune"], "default": "list",
                                               "help": "list (the default), or prune: delete what nothing needs"}),
                                (("--dry-run",), {"action": "store_true",
                                                  "help": "with prune: say what would be deleted, delete nothing"}))),
    "review": Command(cmd_review, "the review queue: counts and the first items, or (--csv) the view's export",
                      lambda: (*CONNECTION, *review_options())),
    "decide": Command(cmd_decide, "record the decisions of a filled-in review export, all of them or none",
                      lambda: (*CONNECTION, *decide_options())),
    "seed": Command(cmd_seed, "fill a database with deterministic dirty demo data", lambda: (
        *CONNECTION,
        (("--customers",), {"type": int, "default": 10_000, "help": "customer profiles to generate (default: 10000)"}),
        (("--seed",), {"type": int, "default": 7, "help": "the same seed gives the same data (default: 7)"}),
        (("--replace",), {"action": "store_true", "help": "drop existing app collections first"}),
        (("--truth",), {"action": "store_true", "help": "seed nothing: print the truth the seed planted (the right "
                                                         "decision on each ambiguous and conflict item) as CSV, or "
                                                         "JSON with --json"}))),
    "serve-db": Command(cmd_serve_db, "run the embedded MongoDB wire-protocol server until Ctrl-C", lambda: (
        (("--port",), {"type": int, "default": 27017, "help": "port to listen on, on 127.0.0.1 (default: 27017)"}),
        (("--data-dir",), {"default": "var/db", "help": "where the server keeps its data, one file per database "
                                                          "(default: var/db)"}))),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="linkage", description=(__doc__ or "").splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, command in COMMANDS.items():
        cmd = sub.add_parser(name, help=command.help, description=command.help)
        for flags, options in command.options():
            cmd.add_argument(*flags, **options)
    return parser


def _emit(args: argparse.Namespace, command: Command, result: Outcome) -> int:
    """Print the outcome (JSON, or for people) and say whether the command succeeded."""
    payload = result.as_json() if isinstance(result, RunReport) else result
    if getattr(args, "json", False):
        print(json.dumps(payload, default=str, sort_keys=True))
    elif isinstance(result, RunReport):
        print_report(result, settings_of(args).docs_dir)
    if payload.get("state") not in command.succeeded:
        ended = f"run ended {payload.get('state')}" if isinstance(result, RunReport) else str(payload.get("state"))
        print(f"linkage {args.command}: {ended}: {payload.get('error') or 'see the run record'}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `linkage review | head` ends quietly, as a Unix tool does
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
        print(f"linkage {args.command}: database error: {redact(describe(exc))}.", file=sys.stderr)
        return 1
    return 0 if result is None else _emit(args, command, result)


if __name__ == "__main__":
    sys.exit(main())
