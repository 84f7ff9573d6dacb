"""Connecting to MongoDB: bounded timeouts and clear errors, any URI unchanged."""

from __future__ import annotations

import difflib
import re
import time
from collections.abc import Sequence

from pymongo import MongoClient
from pymongo.database import Database
from pymongo.errors import (
    ConfigurationError,
    InvalidURI,
    OperationFailure,
    PyMongoError,
    ServerSelectionTimeoutError,
)

from linkage.core.errors import LinkageError, NotTheAppError
from linkage.core.mask import mask_uri
from linkage.core.settings import Settings
from linkage.mongo.concerns import refuse_unacknowledged

#: How long a request waits for a primary to be elected before it fails (and `linkage.mongo.transient` retries it).
ELECTION_MS = 30_000
_TRAILERS = re.compile(r" \(configured timeouts:|, Timeout: |, full error: |, Topology Description: ")


def describe(exc: BaseException) -> str:
    """A driver error as one clause: the first line, without pymongo's trailers (the configured timeouts in
    parentheses, the topology dump, the server's full reply), which cut messages mid-sentence and leak a
    server's internals."""
    text = (str(exc).splitlines() or [type(exc).__name__])[0]
    text = _TRAILERS.split(text, maxsplit=1)[0]
    return text.strip().rstrip(".,;:") or type(exc).__name__


def _first_verdict(client: MongoClient, timeout_s: float) -> None:
    """Wait, at most `timeout_s`, until a server answers or every server the URI names has refused.

    A refused connection or a port that does not speak MongoDB is known at the first check: there is no
    point waiting out the whole timeout for it. Anything else is left to `ping`.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        servers = list(client.topology_description.server_descriptions().values())
        if any(server.is_server_type_known for server in servers):
            return
        errors = [server.error for server in servers]
        if servers and all(error is not None for error in errors):
            raise errors[0]  # type: ignore[misc]
        time.sleep(0.02)
    raise ServerSelectionTimeoutError("no server answered")


def connect(settings: Settings) -> MongoClient:
    """A client that has answered `ping`, or a LinkageError naming the masked URI: one sentence, with what to
    check.

    Timeouts are bounded so a lost server fails the run instead of hanging it: a
    refused or dropped connection fails within `server_timeout_ms` (a refusal at
    once); a hung one within the socket timeout, which is generous (at least five
    minutes) because one sorted read or `$group` over millions of documents
    legitimately takes a while.
    """
    timeout = settings.server_timeout_ms
    uri = mask_uri(settings.mongo_uri)
    try:
        client: MongoClient = MongoClient(
            settings.mongo_uri,
            # a run's requests wait out an election (10-30 s) for a primary, within the retry budget
            # (LINKAGE_RETRY_SECONDS); the first answer is `_first_verdict`'s
            serverSelectionTimeoutMS=max(timeout, min(ELECTION_MS, int(settings.retry_seconds * 1000))),
            connectTimeoutMS=timeout,
            socketTimeoutMS=max(timeout * 60, 300_000),
            appname="linkage",
        )
    except (InvalidURI, ConfigurationError, ValueError) as exc:
        raise LinkageError(f"invalid MongoDB URI {uri}: {describe(exc)}.") from None
    try:
        refuse_unacknowledged(client, uri)
    except LinkageError:
        client.close()
        raise
    started = time.monotonic()
    try:
        _first_verdict(client, timeout / 1000)
        client.admin.command("ping")
    except (PyMongoError, KeyError) as exc:  # KeyError: a server that answers auth with garbage
        client.close()
        # a refusal or another protocol is known at once: the timeout was not waited out, so it is not named
        waited = (time.monotonic() - started) * 1000 >= timeout
        raise LinkageError(
            f"cannot reach MongoDB at {uri}{f' within {timeout / 1000:g} s' if waited else ''} ({describe(exc)}): "
            f"check that a MongoDB server listens there{'' if waited else ' (one started a moment ago may not yet)'} "
            "and that the URI's host, port and credentials are right (LINKAGE_MONGO_URI or --uri)."
        ) from None
    return client


def app_database(client: MongoClient, settings: Settings) -> Database:
    return client[settings.db]


def server_description(db: Database) -> dict[str, object]:
    """Version and topology facts for preflight reports (no credentials)."""
    info = db.client.admin.command("buildInfo")
    hello = db.client.admin.command("hello")
    return {
        "version": info.get("version", "unknown"),
        "replica_set": hello.get("setName"),
        "max_bson_size": hello.get("maxBsonObjectSize"),
    }


def database_names(client: MongoClient) -> list[str] | None:
    """The databases the server lists (those this user may see), or None when it will not say."""
    try:
        reply = client.admin.command("listDatabases", nameOnly=True, authorizedDatabases=True)
    except OperationFailure:
        return None
    return [str(entry["name"]) for entry in reply.get("databases", [])]


def lacking(client: MongoClient, db: str, wanted: Sequence[str], listed: list[str] | None) -> list[str]:
    """Which of `wanted` the database `db` does not hold, asked without creating anything.

    A database the server does not list holds nothing and is not opened at all:
    listing the collections of a database that does not exist creates it on
    some servers (the embedded one), and a typo must leave no trace.
    """
    if listed is not None and db not in listed:
        return sorted(wanted)
    present = set(client[db].list_collection_names())
    return sorted(set(wanted) - present)


def _holds(client: MongoClient, name: str, wanted: Sequence[str]) -> bool:
    """Whether a listed database holds every collection `wanted` (False for one this user may not look into)."""
    try:
        return set(wanted) <= set(client[name].list_collection_names())
    except OperationFailure:
        return False


def require_collections(client: MongoClient, db: str, wanted: Sequence[str], *, shown: int = 5) -> None:
    """Refuse a database that lacks the collections `wanted`, in one line: what it lacks, and the databases
    on the server that hold them all, the most alike first ("did you mean `app`?")."""
    listed = database_names(client)
    missing = lacking(client, db, wanted, listed)
    if not missing:
        return
    holders = [name for name in listed or [] if name != db and _holds(client, name, wanted)]
    holders.sort(key=lambda name: -difflib.SequenceMatcher(None, db, name).ratio())
    if holders:
        more = f" and {len(holders) - shown} more" if len(holders) > shown else ""
        hint = (f"did you mean `{holders[0]}`? (the databases on this server that hold them: "
                f"{', '.join(holders[:shown])}{more})")
    else:
        hint = "no database on this server holds them" if listed is not None else \
            "the server does not list its databases to this user"
    raise NotTheAppError(f"database `{db}` is not the app's: it lacks {', '.join(missing)}, which the steps read; "
                       f"{hint}. Nothing was written.")
