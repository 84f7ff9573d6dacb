"""Helpers the tests share: running the real CLI, reading the database as a whole, parsing `--json`."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument
from pymongo.database import Database

from linkage.core.app_schema import APP_COLLECTIONS, LINK_FIELDS
from linkage.core.settings import Settings
from linkage.dev.ferretdb import FerretDBServer

ROOT = Path(__file__).resolve().parents[1]
#: The least-privilege role's text (docs/RUNBOOK.md §7).
RUNBOOK_ROLE = (ROOT / "docs" / "RUNBOOK.md").read_text().split("## 7.")[1].split("## 8.")[0]


def privileges(text: str) -> list[tuple[str, tuple[str, ...]]]:
    """The role's privileges on the app database, as (collection, sorted actions) in the order written."""
    found = re.findall(r'\{resource: \{db: "app", collection: "([^"]*)"\},\s*actions: \[([^\]]*)\]\}', text)
    return [(coll, tuple(sorted(a.strip().strip('"') for a in actions.split(",")))) for coll, actions in found]


def app_quiet(server: Any) -> bool:
    """Whether the suite's runs on `server` say the app is not writing (LINKAGE_APP_QUIET), as an operator
    must on a server that loses concurrent updates (FerretDB 1.24; `linkage.mongo.concurrency`): no test writes
    beside them there. Elsewhere the guard's probe runs and lets them write."""
    return isinstance(server, FerretDBServer)


def cli_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment a `linkage` subprocess needs to work like `settings`."""
    return {**os.environ, "LINKAGE_MONGO_URI": settings.mongo_uri, "LINKAGE_DB": settings.db,
            "LINKAGE_HOME": str(settings.home), "LINKAGE_APP_QUIET": str(settings.app_quiet).lower(), **extra}


def run_cli(settings: Settings, *args: str, timeout: float = 240,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real `linkage` command in a subprocess, against the test server."""
    return subprocess.run([sys.executable, "-m", "linkage.cli.main", *args], capture_output=True, text=True,
                          timeout=timeout, env={**cli_env(settings), **(env or {})}, cwd=ROOT)


def empty_app(db: Database) -> Database:
    """The app's collections, created empty: a database every command accepts as the app's."""
    for name in set(APP_COLLECTIONS) - set(db.list_collection_names()):
        db.create_collection(name)
    return db


def snapshot(db: Database) -> dict[str, dict[Any, dict]]:
    return {name: {d["_id"]: d for d in db[name].find()} for name in APP_COLLECTIONS}


def raw_bytes(db: Database) -> dict[str, list[bytes]]:
    """Every app document's exact BSON bytes, in `_id` order."""
    raw = CodecOptions(document_class=RawBSONDocument)
    return {name: [d.raw for d in db.get_collection(name, codec_options=raw).find().sort("_id", 1)]
            for name in APP_COLLECTIONS}


def without_links(name: str, doc: dict) -> dict:
    """A document without the link field linkage may write in its collection."""
    return {k: v for k, v in doc.items() if k != LINK_FIELDS.get(name)}


def last_json(stdout: str) -> dict[str, Any]:
    return json.loads(stdout.strip().splitlines()[-1])


def by_app_id(db: Database) -> dict[str, list]:
    """Collections keyed by something stable across two identically seeded databases (not _id)."""
    return {name: sorted(({k: v for k, v in d.items() if k != "_id"} for d in db[name].find()), key=repr)
            for name in APP_COLLECTIONS}


def review_state(db: Database, settings: Settings) -> list[dict]:
    """The review queue as a person sees it: every item but its timestamps and the run that touched it last."""
    return sorted(({k: v for k, v in item.items() if k not in ("updated_at", "run_id")}
                   for item in db[settings.collection("review")].find()), key=lambda item: str(item["_id"]))
