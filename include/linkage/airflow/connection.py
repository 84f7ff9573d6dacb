"""The engine on Airflow's MongoDB connection (`mongo_default`, or LINKAGE_CONN_ID).

The database is the connection's schema, or LINKAGE_DB. TLS and the other
options are the hook's, so any URI the connection holds works unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from linkage.core.errors import NotTheAppError
from linkage.core.settings import Settings
from linkage.run.session import Linkage


def _hook(settings: Settings) -> Any:
    from airflow.providers.mongo.hooks.mongo import MongoHook

    return MongoHook(mongo_conn_id=settings.conn_id)


def connection_target() -> tuple[str, str]:
    """The URI and database the connection names now."""
    settings = Settings.from_env()
    hook = _hook(settings)
    return str(hook.uri), hook.connection.schema or settings.db


def open_linkage() -> Linkage:
    """A new engine handle on the connection (the caller closes it)."""
    settings = Settings.from_env()
    hook = _hook(settings)
    return Linkage(settings.model_copy(update={"mongo_uri": hook.uri, "db": hook.connection.schema or settings.db}),
                   hook.get_conn())


@contextmanager
def session() -> Iterator[Linkage]:
    """The engine for one task or callback, closed at the end."""
    lk = open_linkage()
    try:
        yield lk
    finally:
        lk.close()


@contextmanager
def app_session() -> Iterator[Linkage | None]:
    """The engine for a failure callback or a teardown, which only touch linkage's bookkeeping; None when the
    connection names a database that is not the app's: `preflight` refused it, and nothing may be created
    there (not an alert, not a lease released, not a run record failed)."""
    with session() as lk:
        try:
            lk.require_app()
        except NotTheAppError:
            yield None
        else:
            yield lk
