"""`linkage`: the command line over the same engine the DAGs run (SPEC §7).

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
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pymongo.errors import PyMongoError

from linkage import pipeline, validation
from linkage.database import app_database, connect
from linkage.errors import LinkageError
from linkage.masking import install_log_redaction, redact
from linkage.models import MigrationParams, RunState, Step
from linkage.runs import default_trigger
from linkage.seed import seed
from linkage.server import serve_forever
from linkage.settings import Settings
from linkage.status import status
from linkage.validation.metrics import measure

log = logging.getLogger("linkage")
COUNT_ORDER = ["linked", "ambiguous", "conflict", "unmatched", "invalid", "already_linked", "dangling", "one_sided"]


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.from_env(mongo_uri=args.uri, db=args.db,
                             backup_dir=getattr(args, "backup_dir", None))


def _params(args: argparse.Namespace, *, dry_run: bool) -> MigrationParams:
    steps = [Step(s) for s in args.steps.split(",")] if args.steps else list(Step)
    return MigrationParams(steps=steps, dry_run=dry_run, batch_size=args.batch_size,
                           rollback_on_failure=not args.no_rollback, min_order_coverage=args.min_order_coverage,
                           min_user_coverage=args.min_user_coverage)


def _print_report(result: dict[str, Any]) -> None:
    print(f"run {result['run_id']}: {result['state']}{' (dry run)' if result.get('dry_run') else ''}")
    for step, counts in result.get("steps", {}).items():
        print(f"  {step:16s} " + "  ".join(f"{k}={counts.get(k, 0)}" for k in COUNT_ORDER))
    validation = result.get("validation")
    if validation:
        verdict = "passed" if validation["success"] else "FAILED: " + ", ".join(validation.get("failed", []))
        print(f"  validation: {verdict} (data docs: {validation.get('data_docs')})")
    if result.get("backup"):
        print(f"  backup: {result['backup']}")
    if result.get("rollback"):
        print(f"  rollback: {result['rollback']}")
    if result.get("error"):
        print(f"  error: {result['error']}")


def _ended(state: RunState) -> Callable[[dict[str, Any]], bool]:
    return lambda result: result.get("state") == state


# -- commands ------------------------------------------------------------------

def cmd_migrate(args: argparse.Namespace, *, dry_run: bool = False, kind: str = pipeline.MIGRATE) -> dict[str, Any]:
    lk = pipeline.Linkage(_settings(args))
    try:
        return pipeline.migrate(lk, _params(args, dry_run=dry_run), default_trigger(), kind=kind,
                                new=getattr(args, "new", False), show_progress=not args.quiet)
    finally:
        lk.close()


def cmd_plan(args: argparse.Namespace) -> dict[str, Any]:
    return cmd_migrate(args, dry_run=True)


def cmd_reconcile(args: argparse.Namespace) -> dict[str, Any]:
    return cmd_migrate(args, kind=pipeline.RECONCILE)


def cmd_rollback(args: argparse.Namespace) -> dict[str, Any]:
    lk = pipeline.Linkage(_settings(args))
    try:
        lk.runs.get(args.run_id)
        with lk.hold(args.run_id) as lease:
            pipeline.rollback(lk, args.run_id, lease.guard)
        return pipeline.report(lk, args.run_id)
    finally:
        lk.close()


def cmd_validate(args: argparse.Namespace) -> dict[str, Any]:
    """Validate the current data (no run): coverage thresholds from the flags."""
    lk = pipeline.Linkage(_settings(args))
    try:
        params = MigrationParams(min_order_coverage=args.min_order_coverage, min_user_coverage=args.min_user_coverage)
        outcome = validation.validate(measure(lk.db, lk.reviews, None), params, lk.settings.docs_dir,
                                      f"validate-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}")
    finally:
        lk.close()
    if not args.json:
        for e in outcome.expectations:
            print(f"  {'ok  ' if e.success else 'FAIL'} {e.name:26s} observed {e.observed} (expected {e.threshold})")
        print(f"data docs: {outcome.data_docs}")
    return {"run_id": None, "state": "succeeded" if outcome.success else "failed", "steps": {},
            "validation": {**outcome.model_dump(), "failed": [e.name for e in outcome.failed]}}


def cmd_status(args: argparse.Namespace) -> dict[str, Any]:
    lk = pipeline.Linkage(_settings(args))
    try:
        result = status(lk)
    finally:
        lk.close()
    if not args.json:
        for relation, cov in result["coverage"].items():
            print(f"{relation:28s} {cov['linked']}/{cov['total']} linked ({cov['ratio']:.1%})")
        print(f"open review items: {result['open_review_items'] or 'none'}")
        for run in result["recent_runs"]:
            print(f"  {run['_id']}  {run['state']:15s} {run.get('triggered_by', '')}")
        print(f"lock: {'free' if not result['lock'] else result['lock'].get('run_id')}")
    return {"state": "succeeded", **result}


def cmd_seed(args: argparse.Namespace) -> dict[str, Any]:
    settings = _settings(args)
    client = connect(settings)
    try:
        result = seed(app_database(client, settings), customers=args.customers, seed_value=args.seed,
                      replace=args.replace)
    finally:
        client.close()
    if not args.json:
        print(f"seeded {settings.db}: {result['documents']}")
        for step, counts in result["planted"].items():
            print(f"  planted {step}: {counts}")
        print(f"  bad inputs: {result['bad_inputs']}")
    return {"state": "succeeded", **result}


def cmd_serve_db(args: argparse.Namespace) -> dict[str, Any] | None:
    code = serve_forever(args.port, Path(args.data_dir))
    if code:
        raise LinkageError("embedded server exited unexpectedly")
    return None


Handler = Callable[[argparse.Namespace], dict[str, Any] | None]
COMMANDS: dict[str, tuple[Handler, str, Callable[[dict[str, Any]], bool]]] = {
    "plan": (cmd_plan, "dry run: compute and report every count, write nothing to the app's collections",
             _ended(RunState.SUCCEEDED)),
    "migrate": (cmd_migrate, "backup, indexes, backfills, validation; resumes the newest unfinished run unless --new",
                _ended(RunState.SUCCEEDED)),
    "reconcile": (cmd_reconcile, "link what is still unlinked (index-backed) and repair one-sided pairs",
                  _ended(RunState.SUCCEEDED)),
    "rollback": (cmd_rollback, "undo a run through its journal, keeping the app's later writes",
                 _ended(RunState.ROLLED_BACK)),
    "validate": (cmd_validate, "run the expectation suites on the current data", _ended(RunState.SUCCEEDED)),
    "status": (cmd_status, "link coverage, open review items, recent runs, lock holder", _ended(RunState.SUCCEEDED)),
    "seed": (cmd_seed, "fill a database with deterministic dirty demo data", _ended(RunState.SUCCEEDED)),
    "serve-db": (cmd_serve_db, "run the embedded MongoDB wire-protocol server until Ctrl-C", _ended(RunState.SUCCEEDED)),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="linkage", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (_, help_text, _) in COMMANDS.items():
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        cmd.add_argument("--uri", help="MongoDB URI (default: LINKAGE_MONGO_URI or the embedded default)")
        cmd.add_argument("--db", help="database name (default: LINKAGE_DB or 'app')")
        cmd.add_argument("--json", action="store_true", help="print one JSON object as the last line")
        cmd.add_argument("--quiet", action="store_true", help="no progress on stderr")
        if name in ("plan", "migrate", "reconcile"):
            cmd.add_argument("--steps", help="comma-separated: order_delivery,user_customer (default: both)")
            cmd.add_argument("--batch-size", type=int, default=1000)
            cmd.add_argument("--backup-dir", help="where backups go (default: LINKAGE_BACKUP_DIR or ./backups)")
            cmd.add_argument("--no-rollback", action="store_true", help="keep a run that fails validation (state failed)")
        if name in ("plan", "migrate", "reconcile", "validate"):
            cmd.add_argument("--min-order-coverage", type=float, default=MigrationParams().min_order_coverage)
            cmd.add_argument("--min-user-coverage", type=float, default=MigrationParams().min_user_coverage)
        if name in ("migrate", "reconcile"):
            cmd.add_argument("--new", action="store_true", help="start a new run instead of resuming")
        if name == "rollback":
            cmd.add_argument("--run-id", required=True)
        if name == "seed":
            cmd.add_argument("--customers", type=int, default=10_000)
            cmd.add_argument("--seed", type=int, default=7)
            cmd.add_argument("--replace", action="store_true", help="drop existing app collections first")
        if name == "serve-db":
            cmd.add_argument("--port", type=int, default=27017)
            cmd.add_argument("--data-dir", default="var/db")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s", stream=sys.stderr)
    log.setLevel(logging.INFO)
    install_log_redaction()
    args = build_parser().parse_args(argv)
    handler, _, succeeded = COMMANDS[args.command]
    try:
        result = handler(args)
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
    elif "run_id" in result:
        _print_report(result)
    if not succeeded(result):
        print(f"linkage {args.command}: run ended {result.get('state')}: {result.get('error') or 'see the run record'}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
