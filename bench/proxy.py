"""A local TCP proxy that delays every MongoDB wire-protocol message: a network between client and server.

    with LatencyProxy("mongodb://127.0.0.1:27017/", delay_ms=1.0) as proxy:
        MongoClient(proxy.uri)   # mongodb://127.0.0.1:<port>/?directConnection=true

Every message (a 4-byte little-endian total length, then the rest) is read whole and
forwarded whole, in order, half the delay after it arrived, in each direction: a
request -> response round trip gains the full delay (default 1 ms, a typical
in-region network to a managed MongoDB). The delay is per message, never per TCP
chunk or per byte, and messages wait only for their own deadline (a network's
latency, not a bandwidth limit): a reader thread stamps each message as it arrives
and a writer thread releases it at arrival + delay / 2.

The proxy runs in a process of its own (`python -m bench.proxy`), so its threads
never compete for the GIL with the client being measured, as a network would not.
It speaks plain TCP: a TLS connection cannot be read message by message.
"""

from __future__ import annotations

import argparse
import queue
import signal
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import FrameType

from pymongo import MongoClient
from pymongo.uri_parser import parse_uri

from linkage.core.errors import LinkageError
from linkage.dev.server import answers_ping, free_port

HEADER = struct.Struct("<i")
#: A wire-protocol message is at least its 16-byte header; MongoDB caps messages at 48 MB.
MIN_MESSAGE, MAX_MESSAGE = 16, 64 * 1024 * 1024
ROOT = Path(__file__).resolve().parents[1]
#: What a writer is handed: a message and the monotonic time it may leave, or None at the end of the stream.
Outgoing = tuple[float, bytes] | None


def _read_exact(sock: socket.socket, n: int) -> bytes | None:
    """Exactly n bytes, or None if the stream ends first."""
    buf = bytearray(n)
    view, got = memoryview(buf), 0
    while got < n:
        read = sock.recv_into(view[got:])
        if read == 0:
            return None
        got += read
    return bytes(buf)


def read_message(sock: socket.socket) -> bytes | None:
    """One whole wire-protocol message, or None when the peer closed (or sent no valid header)."""
    header = _read_exact(sock, HEADER.size)
    if header is None:
        return None
    (length,) = HEADER.unpack(header)
    if not MIN_MESSAGE <= length <= MAX_MESSAGE:
        return None
    rest = _read_exact(sock, length - HEADER.size)
    return None if rest is None else header + rest


class Pipe:
    """One direction of one connection: messages from `src`, each sent on to `dst` `delay` seconds after
    it arrived. Reading and writing are separate threads, so a message waiting out its delay never holds
    up the reading of the next one."""

    def __init__(self, src: socket.socket, dst: socket.socket, delay: float, done: threading.Barrier) -> None:
        self.src, self.dst, self.delay, self.done = src, dst, delay, done
        self.queue: queue.SimpleQueue[Outgoing] = queue.SimpleQueue()

    def start(self) -> None:
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._write, daemon=True).start()

    def _read(self) -> None:
        try:
            while (message := read_message(self.src)) is not None:
                self.queue.put((time.monotonic() + self.delay, message))
        except OSError:
            pass
        self.queue.put(None)

    def _write(self) -> None:
        try:
            while (item := self.queue.get()) is not None:
                deadline, message = item
                if (wait := deadline - time.monotonic()) > 0:
                    time.sleep(wait)
                self.dst.sendall(message)
            self.dst.shutdown(socket.SHUT_WR)  # the peer's end of stream, after everything it sent
        except OSError:  # either side is gone: end both directions
            for sock in (self.src, self.dst):
                _shutdown(sock)
        self.done.wait()


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _connected(sock: socket.socket) -> socket.socket:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # every message leaves at once (no Nagle)
    return sock


def proxy_connection(client: socket.socket, target: tuple[str, int], one_way: float) -> None:
    """Relay one client connection to the server, both directions delayed; both sockets closed at the end."""
    try:
        server = _connected(socket.create_connection(target))
    except OSError:
        client.close()
        return
    _connected(client)
    done = threading.Barrier(3)
    for src, dst in ((client, server), (server, client)):
        Pipe(src, dst, one_way, done).start()

    def close_when_done() -> None:
        done.wait()
        client.close()
        server.close()

    threading.Thread(target=close_when_done, daemon=True).start()


def serve(port: int, target: tuple[str, int], delay_ms: float) -> None:
    """Accept on 127.0.0.1:`port` until SIGTERM or SIGINT; each connection relayed with `delay_ms` per round trip."""
    def stop(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    one_way = delay_ms / 2000
    with socket.create_server(("127.0.0.1", port)) as listener:
        try:
            while True:
                conn, _ = listener.accept()
                proxy_connection(conn, target, one_way)
        except KeyboardInterrupt:
            return


def target_of(uri: str) -> tuple[str, int]:
    """The server a proxy forwards to: the first host of a plain (non-TLS, non-SRV) MongoDB URI."""
    parsed = parse_uri(uri)
    if uri.startswith("mongodb+srv://") or parsed["options"].get("tls"):
        raise LinkageError("the latency run needs a plain TCP MongoDB URI (no TLS, no mongodb+srv)")
    host, port = parsed["nodelist"][0]
    return host, int(port)


def proxied_uri(uri: str, port: int) -> str:
    """`uri` with its hosts replaced by the proxy's, connecting directly (a replica set's other members
    are not behind the proxy); credentials and options are kept."""
    rest = uri.removeprefix("mongodb://")
    userinfo, _, rest = rest.rpartition("@") if "@" in rest.split("/", 1)[0] else ("", "", rest)
    _hosts, _, path = rest.partition("/")
    database, _, options = path.partition("?")
    options = "&".join(o for o in [options, "directConnection=true"] if o)
    return f"mongodb://{userinfo + '@' if userinfo else ''}127.0.0.1:{port}/{database}?{options}"


class LatencyProxy:
    """`with LatencyProxy(uri) as proxy:` a proxy process runs for the block; `proxy.uri` goes through it.

    What a round trip gains is measured, not assumed: a thread waking from a sleep is
    ~0.1 ms late and the extra hop costs ~0.1 ms, so the proxy's own sleep is calibrated
    (a few restarts) until a `ping` through it takes `delay_ms` longer than one straight
    to the server, within `TOLERANCE`. `added_ms` is what was measured last.
    """

    TOLERANCE, ROUNDS = 0.1, 4

    def __init__(self, server_uri: str, delay_ms: float = 1.0) -> None:
        self.server_uri, self.delay_ms = server_uri, delay_ms
        self.target = target_of(server_uri)
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.sleep_ms, self.direct_ms, self.proxied_ms = delay_ms, 0.0, 0.0

    @property
    def uri(self) -> str:
        return proxied_uri(self.server_uri, self.port)

    @property
    def added_ms(self) -> float:
        return self.proxied_ms - self.direct_ms

    def start(self) -> LatencyProxy:
        """Start the proxy, re-started with a corrected sleep until the measured delay is the one asked for."""
        self.direct_ms = ping_ms(self.server_uri)
        for attempt in range(self.ROUNDS):
            self._launch()
            self.proxied_ms = ping_ms(self.uri)
            error = self.delay_ms - self.added_ms
            if self.delay_ms <= 0 or abs(error) <= self.TOLERANCE * self.delay_ms or attempt == self.ROUNDS - 1:
                return self
            self.stop()
            self.sleep_ms = max(0.0, self.sleep_ms + error)
        return self

    def _launch(self, timeout: float = 20.0) -> None:
        host, port = self.target
        self.port = free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.proxy", "--port", str(self.port), "--target", f"{host}:{port}",
             "--delay-ms", f"{self.sleep_ms:.4f}"], cwd=ROOT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise LinkageError(f"latency proxy exited with code {self.process.returncode}")
            if answers_ping(self.uri, timeout_ms=1000):
                return
            time.sleep(0.1)
        self.stop()
        raise LinkageError(f"latency proxy did not answer ping on port {self.port} within {timeout:.0f}s")

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> LatencyProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def ping_ms(uri: str, count: int = 200) -> float:
    """Median milliseconds of a `ping` round trip on an open connection (what the proxy adds is the difference)."""
    client: MongoClient = MongoClient(uri)
    try:
        client.admin.command("ping")  # connect and handshake first: only the round trips are timed
        samples = []
        for _ in range(count):
            started = time.perf_counter()
            client.admin.command("ping")
            samples.append(time.perf_counter() - started)
        return statistics.median(samples) * 1000
    finally:
        client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True, help="listen on 127.0.0.1:PORT")
    parser.add_argument("--target", required=True, help="HOST:PORT of the MongoDB server")
    parser.add_argument("--delay-ms", type=float, default=1.0, help="added to each request -> response round trip")
    args = parser.parse_args()
    host, _, port = args.target.rpartition(":")
    serve(args.port, (host, int(port)), args.delay_ms)


if __name__ == "__main__":
    main()
