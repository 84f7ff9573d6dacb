"""Connecting to MongoDB: bounded timeouts and clear errors, any URI unchanged."""

from __future__ import annotations

from pymongo import MongoClient
from pymongo.database import Database
from pymongo.errors import ConfigurationError, InvalidURI, PyMongoError

from linkage.errors import LinkageError
from linkage.masking import mask_uri
from linkage.settings import Settings


def connect(settings: Settings) -> MongoClient:
    """A client that has answered `ping`, or a LinkageError naming the masked URI.

    Timeouts are bounded so a lost server fails the run instead of hanging it: a
    refused or dropped connection fails within `server_timeout_ms`; a hung one
    within the socket timeout, which is generous (at least five minutes) because
    one sorted read or `$group` over millions of documents legitimately takes a while.
    """
    timeout = settings.server_timeout_ms
    try:
        client: MongoClient = MongoClient(
            settings.mongo_uri,
            serverSelectionTimeoutMS=timeout,
            connectTimeoutMS=timeout,
            socketTimeoutMS=max(timeout * 60, 300_000),
            appname="linkage",
        )
    except (InvalidURI, ConfigurationError, ValueError) as exc:
        raise LinkageError(f"invalid MongoDB URI {mask_uri(settings.mongo_uri)}: {exc}") from None
    try:
        client.admin.command("ping")
    except (PyMongoError, KeyError) as exc:  # KeyError: a server that answers auth with garbage
        client.close()
        reason = str(exc).split(",")[0][:200]
        raise LinkageError(
            f"cannot reach MongoDB at {mask_uri(settings.mongo_uri)}: {reason}"
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
