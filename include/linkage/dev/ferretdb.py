"""FerretDB, a MongoDB-compatible server written in Go, run like the embedded one (tests, benchmarks).

`make tools` builds it once, pinned, into `var/tools/ferretdb-<version>/` (scripts/build-ferretdb.sh).
It runs on its SQLite backend, one file per database under its own data directory,
with telemetry and its debug HTTP listener off. Why SQLite and not its PostgreSQL
backend: docs/servers.md, "Tested on two servers".
"""

from __future__ import annotations

from pathlib import Path

from linkage.dev.server import ServerProcess

VERSION = "v1.24.2"
BINARY = Path(__file__).resolve().parents[3] / "var" / "tools" / f"ferretdb-{VERSION}" / "ferretdb"


def missing(binary: Path = BINARY) -> str | None:
    """Why FerretDB cannot be started here (one line), or None when it can."""
    if binary.is_file():
        return None
    return f"FerretDB {VERSION} is not built ({binary} is missing): `make tools` builds it, and needs Go"


class FerretDBServer(ServerProcess):
    """`with FerretDBServer(port, dir) as server:` runs FerretDB on SQLite files in `dir` for the block."""

    label = f"FerretDB {VERSION}"

    def __init__(self, port: int, data_dir: Path, host: str = "127.0.0.1", binary: Path = BINARY) -> None:
        super().__init__(port, data_dir, host)
        self.binary = binary

    def command(self) -> list[str]:
        (self.data_dir / "sqlite").mkdir(parents=True, exist_ok=True)
        return [str(self.binary), "--handler=sqlite", f"--sqlite-url=file:{self.data_dir / 'sqlite'}/",
                f"--state-dir={self.data_dir}", f"--listen-addr={self.host}:{self.port}", "--debug-addr=-",
                "--telemetry=disable", "--log-level=error"]


def by_name() -> dict[str, type[ServerProcess]]:
    """The servers the tests and benchmarks can start themselves, by the name they are chosen by."""
    from linkage.dev.server import EmbeddedServer

    return {"nx": EmbeddedServer, "ferretdb": FerretDBServer}
