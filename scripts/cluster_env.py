"""The environment `make cluster` starts Airflow with, derived from deploy/airflow.env.

deploy/airflow.env is the one configuration docker-compose.yaml and `make cluster`
share. It is written as the containers see the world; natively exactly two things
change, here and nowhere else:

- a path /opt/airflow/<dir> becomes the repository's <dir> for the code the image
  mounts (dags, include, plugins, deploy) and var/cluster/<dir> for state (logs,
  backups, gx_docs, secrets);
- the API server's address airflow-apiserver:8080 becomes 127.0.0.1:<api port>.

Besides those, each native process gets only its identity and where it listens
(PROCESS_KEYS): AIRFLOW_HOME, LINKAGE_HOSTNAME (two workers on one machine still need
two names) and the scheduler's health-check address.

    python scripts/cluster_env.py --root . --home var/cluster --api-port 8080   # prints `export K=V` lines
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT / "deploy" / "airflow.env"
CONTAINER_HOME = "/opt/airflow"
CODE_DIRS = {"dags", "include", "plugins", "deploy"}
API_SERVICE = "airflow-apiserver:8080"
# What a native process may have beyond the shared file: who it is and where it listens.
PROCESS_KEYS = {"AIRFLOW_HOME", "LINKAGE_HOSTNAME", "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_HOST",
                "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT"}
_LINE = re.compile(r"^([A-Z][A-Z0-9_]*)=(.*)$")


def read_env_file(path: Path = SHARED) -> dict[str, str]:
    """KEY=value lines (comments and blank lines skipped); no quotes and no `$`, so that
    docker compose's env_file and this reader cannot disagree about a value."""
    values: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _LINE.match(line)
        if not match:
            raise ValueError(f"{path}:{number}: not a KEY=value line")
        key, value = match.groups()
        if "$" in value or value[:1] in "\"'" or key in values:
            raise ValueError(f"{path}:{number}: {key}: no '$', no quotes, no repeated keys in a shared env file")
        values[key] = value
    return values


def translate(value: str, root: Path, home: Path, api_port: int) -> str:
    """A shared value as the native cluster uses it (the two translations, nothing else)."""
    def path(match: re.Match[str]) -> str:
        name = match.group(1)
        return str((root if name in CODE_DIRS else home) / name)

    value = re.sub(rf"{re.escape(CONTAINER_HOME)}/([A-Za-z0-9_]+)", path, value)
    return value.replace(API_SERVICE, f"127.0.0.1:{api_port}")


def native_env(root: Path, home: Path, api_port: int, shared: Path = SHARED) -> dict[str, str]:
    return {key: translate(value, root, home, api_port) for key, value in read_env_file(shared).items()}


# What make cluster takes from the compose file's .env: the secrets (so an empty or change-me
# one is refused alike), never LINKAGE_MONGO_CONN (its MongoDB is the embedded one).
DOTENV_KEYS = ("POSTGRES_PASSWORD", "REDIS_PASSWORD", "AIRFLOW_ADMIN_PASSWORD", "AIRFLOW_FERNET_KEY",
               "LINKAGE_ALERT_EMAILS")


def dotenv_exports(path: Path) -> dict[str, str]:
    """The DOTENV_KEYS of a compose .env file, parsed as compose does (not sourced as shell)."""
    from dotenv import dotenv_values

    values = dotenv_values(path, interpolate=False)
    return {key: values[key] or "" for key in DOTENV_KEYS if key in values}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=ROOT)
    parser.add_argument("--home", type=Path)
    parser.add_argument("--api-port", type=int)
    parser.add_argument("--dotenv", type=Path, help="print the secrets of this .env file instead")
    args = parser.parse_args(argv)
    if args.dotenv:
        values = dotenv_exports(args.dotenv)
    elif args.home and args.api_port:
        values = native_env(args.root.resolve(), args.home.resolve(), args.api_port)
    else:
        parser.error("--home and --api-port, or --dotenv")
    for key, value in values.items():
        print(f"export {key}={shlex.quote(value)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
