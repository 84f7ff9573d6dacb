"""The embedded MongoDB wire-protocol server (nx-27017), started and stopped cleanly.

Always started with `--data-dir` (one SQLite file per database): the package's
default single-file mode lets databases overwrite each other. Its pid and log
files go inside the data directory so servers on different ports never clash.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Self

from pymongo import MongoClient
from pymongo.errors import PyMongoError

from linkage.core.errors import LinkageError

_LAUNCH = "import sys; from nx_27017.nx_27017 import main; sys.exit(main())"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def answers_ping(uri: str, timeout_ms: int = 300) -> bool:
    client: MongoClient = MongoClient(uri, serverSelectionTimeoutMS=timeout_ms, connectTimeoutMS=timeout_ms)
    try:
        client.admin.command("ping")
        return True
    except PyMongoError:
        return False
    finally:
        client.close()


class ServerProcess:
    """A MongoDB-compatible server run as a child process on `port`, its files in `data_dir`.

    `with Server(port, dir) as server:` runs it for the block. Subclasses say how it is launched.
    """

    label = "server"

    def __init__(self, port: int, data_dir: Path, host: str = "127.0.0.1") -> None:
        self.port, self.data_dir, self.host = port, Path(data_dir), host
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        return f"mongodb://{self.host}:{self.port}/"

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self, timeout: float = 20.0) -> Self:
        if answers_ping(self.uri):
            raise LinkageError(f"port {self.port} already has a MongoDB server; choose another --port")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.data_dir / "server.log", "ab")
        self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise LinkageError(f"{self.label} exited with code {self.process.returncode}; "
                                   f"see {self.data_dir / 'server.log'}")
            if answers_ping(self.uri):
                return self
            time.sleep(0.05)
        self.stop()
        raise LinkageError(f"{self.label} did not answer ping on port {self.port} within {timeout:.0f}s")

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class EmbeddedServer(ServerProcess):
    """nx-27017, always with `--data-dir` (see the module docstring)."""

    label = "embedded server"

    def command(self) -> list[str]:
        return [sys.executable, "-c", _LAUNCH, "--data-dir", str(self.data_dir), "--host", self.host,
                "-p", str(self.port), "--pid-file", str(self.data_dir / "server.pid"),
                "--log-file", str(self.data_dir / "server.log")]


def serve_forever(port: int, data_dir: Path) -> int:
    """Run until Ctrl-C or SIGTERM, then stop the server cleanly (for `linkage serve-db`)."""
    server = EmbeddedServer(port, data_dir).start()
    print(f"embedded MongoDB wire server on {server.uri} (data in {data_dir}); Ctrl-C to stop", flush=True)

    def _stop(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    try:
        while server.process and server.process.poll() is None:
            time.sleep(0.5)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        server.stop()
        print("embedded server stopped", flush=True)
