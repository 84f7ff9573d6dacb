"""Where the Linkage plugin lives on the api-server, and links to it from tasks, notes and alerts."""

from __future__ import annotations

PREFIX = "/linkage"
DOCS_ROUTE = f"{PREFIX}/docs"


def public_url(path: str) -> str:
    """An absolute link to `path` on the api-server: `[api] base_url`, else the host and port it listens on."""
    from airflow.configuration import conf

    base = conf.get("api", "base_url", fallback=None) or \
        f"http://localhost:{conf.get('api', 'port', fallback='8080')}"
    return f"{base.rstrip('/')}/{path.lstrip('/')}"


def docs_link(relative: str | None) -> str:
    """The served Data Docs of a run, from the path its validation recorded (relative to the docs directory)."""
    return public_url(f"{DOCS_ROUTE}/{relative}") if relative else "none"
