"""Check the deployment's secrets and write the files Airflow reads them from.

Run once before anything starts, by docker compose (service `airflow-config`) and by
`make cluster` (scripts/cluster.sh), with the endpoints of that topology:

    python deploy/init_config.py --secrets DIR --postgres HOST:PORT --redis HOST:PORT \
        --mongo HOST:PORT [--mongo-user linkage] --smtp HOST:PORT [--generate-missing]

Passwords come from the environment (POSTGRES_PASSWORD, REDIS_PASSWORD,
AIRFLOW_ADMIN_PASSWORD, and LINKAGE_MONGO_PASSWORD with --mongo-user). An empty or
`change-me` password stops it with a one-line reason and exit code 2; so does one
that differs from the password kept from the first start (the databases were
initialised with that one). A missing password is an error too, unless
--generate-missing (make cluster): then a random one is generated and kept.

The Fernet key (AIRFLOW_FERNET_KEY, or generated), the JWT secret and the API secret
key are generated on the first start and kept. Everything goes to DIR, mode 0600:
the connection URLs (`sql_alchemy_conn`, `broker_url`, `result_backend`),
`connections.json` (mongo_default, smtp_default; LINKAGE_MONGO_CONN replaces the
bundled MongoDB's) and the UI password. Nothing secret is printed.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import os
import re
import secrets
import sys
from collections.abc import Callable
from pathlib import Path

PLACEHOLDERS = {"change-me", "changeme", "change_me"}
URL_SAFE = re.compile(r"^[A-Za-z0-9._~-]+$")
MONGO_DB = "app"
MONGO_OPTIONS = "serverSelectionTimeoutMS=5000&connectTimeoutMS=5000"
PASSWORDS = {  # env var -> file it is kept in
    "POSTGRES_PASSWORD": "postgres_password",
    "REDIS_PASSWORD": "redis_password",
    "AIRFLOW_ADMIN_PASSWORD": "admin_password",
}


class Refused(Exception):
    """A setting the deployment must not start with (the message is the one-line reason)."""


def checked_password(name: str, value: str | None) -> str | None:
    """The password, None when unset, or Refused when it is empty, a placeholder or not URL-safe."""
    if value is None:
        return None
    if not value.strip():
        raise Refused(f"{name} is empty: set a real password in .env (e.g. `openssl rand -hex 24`)")
    if value.strip().lower() in PLACEHOLDERS:
        raise Refused(f"{name} is still 'change-me': set a real password in .env (e.g. `openssl rand -hex 24`)")
    if len(value) < 12:
        raise Refused(f"{name} is shorter than 12 characters: set a longer one in .env (e.g. `openssl rand -hex 24`)")
    if not URL_SAFE.match(value):
        raise Refused(f"{name} has characters that need escaping in a URL; use letters, digits and - _ . ~ "
                      f"(e.g. `openssl rand -hex 24`)")
    return value


def checked_fernet_key(value: str) -> str:
    """AIRFLOW_FERNET_KEY: one key, or several comma-separated (newest first) while rotating."""
    for key in value.split(","):
        try:
            ok = len(base64.urlsafe_b64decode(key.strip().encode())) == 32
        except (binascii.Error, ValueError):
            ok = False
        if not ok:
            raise Refused("AIRFLOW_FERNET_KEY is not a Fernet key (32 url-safe base64-encoded bytes); leave it "
                          "empty to have one generated and kept")
    return value.strip()


def new_fernet_key() -> str:
    """What cryptography's Fernet.generate_key() returns: 32 random bytes, url-safe base64."""
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


class Secrets:
    """The secrets directory: files readable by their owner only, written atomically."""

    def __init__(self, path: Path, owner: tuple[int, int] | None) -> None:
        self.path, self.owner = path, owner

    def read(self, name: str) -> str | None:
        file = self.path / name
        return file.read_text() if file.exists() else None

    def write(self, name: str, value: str) -> None:
        tmp = self.path / f".{name}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(value)  # no trailing newline: Airflow's *_CMD uses `cat` output as is
        if self.owner:
            os.chown(tmp, *self.owner)
        os.replace(tmp, self.path / name)

    def kept(self, name: str, given: str | None, generate: bool, what: str,
             new: Callable[[], str] = lambda: secrets.token_hex(24)) -> str:
        """A value kept from the first start: `given` the first time (or generated), then the kept one."""
        current = self.read(name)
        if current is not None:
            if given is not None and given != current:
                raise Refused(f"{what} differs from the one this deployment was first started with; "
                              f"put the first one back (or start on fresh volumes)")
            return current
        if given is None:
            if not generate:
                raise Refused(f"{what} is not set: set it in .env (see .env.example)")
            given = new()
        self.write(name, given)
        return given


def host_port(value: str) -> str:
    if not re.match(r"^[A-Za-z0-9.-]+:\d+$", value):
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    return value


def mongo_connection(args: argparse.Namespace, env: dict[str, str]) -> str:
    """mongo_default: LINKAGE_MONGO_CONN when given (your production database), else the bundled MongoDB."""
    given = env.get("LINKAGE_MONGO_CONN", "").strip()
    if given:
        return given
    if args.mongo_user:
        password = checked_password("LINKAGE_MONGO_PASSWORD", env.get("LINKAGE_MONGO_PASSWORD"))
        if password is None:
            raise Refused("LINKAGE_MONGO_PASSWORD is not set: set it in .env (see .env.example)")
        return f"mongo://{args.mongo_user}:{password}@{args.mongo}/{MONGO_DB}?authSource=admin&{MONGO_OPTIONS}"
    return f"mongo://{args.mongo}/{MONGO_DB}?{MONGO_OPTIONS}"


def configure(args: argparse.Namespace, env: dict[str, str]) -> list[str]:
    """Check everything, then write the secrets directory; returns the names written."""
    for name in args.check:
        if checked_password(name, env.get(name)) is None:
            raise Refused(f"{name} is not set: set it in .env (see .env.example)")
    given = {name: checked_password(name, env.get(name)) for name in PASSWORDS}
    fernet = env.get("AIRFLOW_FERNET_KEY", "").strip()
    fernet_given = checked_fernet_key(fernet) if fernet else None
    mongo = mongo_connection(args, env)

    args.secrets.mkdir(parents=True, exist_ok=True)
    os.chmod(args.secrets, 0o700)
    if args.owner:
        os.chown(args.secrets, *args.owner)
    store = Secrets(args.secrets, args.owner)
    passwords = {name: store.kept(file, given[name], args.generate_missing, name) for name, file in PASSWORDS.items()}
    store.kept("fernet_key", fernet_given, True, "AIRFLOW_FERNET_KEY", new_fernet_key)
    store.kept("jwt_secret", None, True, "the JWT secret")
    store.kept("api_secret_key", None, True, "the API secret key")

    pg = f"airflow:{passwords['POSTGRES_PASSWORD']}@{args.postgres}/airflow"
    files = {
        "sql_alchemy_conn": f"postgresql+psycopg2://{pg}",
        "result_backend": f"db+postgresql+psycopg2://{pg}",
        "broker_url": f"redis://:{passwords['REDIS_PASSWORD']}@{args.redis}/0",
        "simple_auth_manager_passwords.json": json.dumps({"admin": passwords["AIRFLOW_ADMIN_PASSWORD"]}),
        "connections.json": json.dumps(connections(mongo, args.smtp, env), indent=2),
    }
    for name, value in files.items():
        store.write(name, value)
    return sorted(files)


def connections(mongo: str, smtp: str, env: dict[str, str]) -> dict[str, object]:
    host, port = smtp.rsplit(":", 1)
    return {
        "mongo_default": mongo,
        "smtp_default": {"conn_type": "smtp", "host": host, "port": int(port),
                         "extra": {"disable_ssl": True, "disable_tls": True, "from_email": "linkage@example.org",
                                   "to": env.get("LINKAGE_ALERT_EMAILS") or "oncall@example.org"}},
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--secrets", type=Path, required=True, help="directory the secrets are kept in")
    parser.add_argument("--postgres", type=host_port, required=True)
    parser.add_argument("--redis", type=host_port, required=True)
    parser.add_argument("--mongo", type=host_port, required=True)
    parser.add_argument("--mongo-user", help="the bundled MongoDB's pipeline user (password: LINKAGE_MONGO_PASSWORD)")
    parser.add_argument("--smtp", type=host_port, required=True)
    parser.add_argument("--generate-missing", action="store_true", help="generate and keep passwords not given")
    parser.add_argument("--check", action="append", default=[], metavar="VAR",
                        help="another password variable that must be set and real (e.g. MONGO_ROOT_PASSWORD)")
    parser.add_argument("--owner", type=lambda s: tuple(int(x) for x in s.split(":")),
                        help="UID:GID to own the files (the airflow user of the containers)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        written = configure(args, dict(os.environ))
    except Refused as refused:
        print(f"refusing to start: {refused}", file=sys.stderr)
        return 2
    print(f"configuration checked; secrets kept in {args.secrets} ({len(written)} files written, mode 0600)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
