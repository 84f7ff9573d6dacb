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


def page_link(path: str) -> str:
    """A link for a page Airflow's UI shows (Markdown in a task's Required Actions): `[api] base_url`'s
    when it is set, else the path alone, which stays on the host the person is signed in at (an
    absolute `localhost` link from a UI opened at 127.0.0.1 lands on a page with no login cookie)."""
    from airflow.configuration import conf

    return public_url(path) if conf.get("api", "base_url", fallback=None) else f"/{path.lstrip('/')}"


def docs_link(relative: str | None) -> str:
    """The served Data Docs of a run, from the path its validation recorded (relative to the docs directory)."""
    return public_url(f"{DOCS_ROUTE}/{relative}") if relative else "none"
