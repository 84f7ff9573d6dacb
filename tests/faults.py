"""A wire-protocol proxy that sees every command and its reply, and can spoil chosen replies.

    with FaultProxy(server_uri) as proxy:
        proxy.spoil(lambda cmd: cmd.name == "update" and cmd.collection == "linkage_journal", WRITE_CONCERN_ERROR)
        MongoClient(proxy.uri)

Each OP_MSG request is decoded (its command name, collection and body), forwarded, and its reply passed back,
unless a rule matches the request: then the reply is changed the way the rule says (`writeConcernError`
added, as a replica set answers when a majority did not acknowledge in time) after the server has applied the
request. `commands` keeps every request seen, for assertions on what each carried (write and read concern).
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import bson

from bench.proxy import read_message
from linkage.dev.server import free_port

OP_MSG = 2013
HEADER = struct.Struct("<iiii")
NOT_WRITABLE_PRIMARY = {"ok": 0.0, "code": 10107, "codeName": "NotWritablePrimary", "errmsg": "not primary"}
WRITE_CONCERN_ERROR = {"code": 64, "codeName": "WriteConcernFailed", "errmsg": "waiting for replication timed out",
                       "errInfo": {"wtimeout": True}}


@dataclass
class Command:
    name: str
    collection: Any
    body: dict[str, Any]


@dataclass
class Rule:
    """What to do to the reply of a matching request, `times` times: add a write-concern error to it, or hold
    it back `stall` seconds (a stalled socket: the server has applied the request)."""

    matches: Callable[[Command], bool]
    write_concern_error: dict[str, Any] | None = None
    stall: float = 0.0
    #: Refuse matching requests without sending them on, until this monotonic time, with this error.
    refuse_until: float = 0.0
    refusal: dict[str, Any] | None = None
    #: Lose the reply: the server applied the request, the connection is reset before the client hears.
    lose: bool = False
    #: Matching requests to let through first.
    after: int = 0
    times: int = 1
    hits: list[Command] = field(default_factory=list)


def _decode(message: bytes) -> tuple[int, int, dict[str, Any]] | None:
    """(requestID, responseTo, body) of an OP_MSG, its document sequences (kind 1: `updates`, `documents`, ...)
    folded into the body under their names; None for anything else."""
    length, request_id, response_to, op = HEADER.unpack_from(message)
    if op != OP_MSG:
        return None
    body: dict[str, Any] = {}
    sequences: dict[str, list[Any]] = {}
    at = HEADER.size + 4
    while at < length:
        kind, size = message[at], struct.unpack_from("<i", message, at + 1)[0]
        if kind == 0:
            body = bson.decode(message[at + 1:at + 1 + size])
        elif kind == 1:
            end = message.index(b"\x00", at + 5)
            name, docs, cursor = message[at + 5:end].decode(), [], end + 1
            while cursor < at + 1 + size:
                n = struct.unpack_from("<i", message, cursor)[0]
                docs.append(bson.decode(message[cursor:cursor + n]))
                cursor += n
            sequences[name] = docs
        else:  # a checksum (flag bit 0) ends the message
            break
        at += 1 + size
    return request_id, response_to, {**body, **sequences}


def _encode(request_id: int, response_to: int, flags: int, body: dict[str, Any]) -> bytes:
    payload = struct.pack("<I", flags) + b"\x00" + bson.encode(body)
    return HEADER.pack(HEADER.size + len(payload), request_id, response_to, OP_MSG) + payload


class FaultProxy:
    """A proxy on a free local port in front of `uri`'s server (see the module docstring)."""

    def __init__(self, uri: str) -> None:
        host_port = uri.split("//", 1)[1].split("/", 1)[0].split("?", 1)[0]
        host, port = host_port.rsplit(":", 1)
        self.target = (host, int(port))
        self.port = free_port()
        self.commands: list[Command] = []
        self.rules: list[Rule] = []
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", self.port))

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"

    def spoil(self, matches: Callable[[Command], bool], write_concern_error: dict[str, Any], times: int = 1) -> Rule:
        """Add `write_concern_error` to the replies of the next `times` matching requests."""
        return self._add(Rule(matches, write_concern_error=write_concern_error, times=times))

    def stall(self, matches: Callable[[Command], bool], seconds: float, times: int = 1) -> Rule:
        """Hold back the replies of the next `times` matching requests for `seconds`."""
        return self._add(Rule(matches, stall=seconds, times=times))

    def lose(self, matches: Callable[[Command], bool], after: int = 0, times: int = 1) -> Rule:
        """Let `after` matching requests through, then lose the replies of the next `times`: the server
        applies each, and the connection is reset before its reply reaches the client."""
        return self._add(Rule(matches, lose=True, after=after, times=times))

    def elect(self, matches: Callable[[Command], bool], seconds: float) -> Rule:
        """An election, as a client sees it: for `seconds`, every matching request (the writes) is refused with
        NotWritablePrimary, unapplied."""
        return self._add(Rule(matches, refuse_until=time.monotonic() + seconds, refusal=NOT_WRITABLE_PRIMARY,
                              times=1_000_000))

    def _add(self, rule: Rule) -> Rule:
        with self._lock:
            self.rules.append(rule)
        return rule

    def __enter__(self) -> FaultProxy:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            threading.Thread(target=self._relay, args=(client, server), daemon=True).start()

    def _rule_for(self, command: Command) -> Rule | None:
        with self._lock:
            self.commands.append(command)
            for rule in self.rules:
                if rule.refusal and time.monotonic() >= rule.refuse_until:
                    continue
                if rule.times > 0 and rule.matches(command):
                    if rule.after > 0:
                        rule.after -= 1
                        continue
                    rule.times -= 1
                    rule.hits.append(command)
                    return rule
        return None

    def _relay(self, client: socket.socket, server: socket.socket) -> None:
        try:
            while (request := read_message(client)) is not None:
                decoded = _decode(request)
                rule = None
                if decoded is not None:
                    body = decoded[2]
                    name = next(iter(body))
                    rule = self._rule_for(Command(name, body[name], body))
                if rule and rule.refusal and decoded is not None:
                    client.sendall(_encode(0, decoded[0], 0, rule.refusal))
                    continue
                server.sendall(request)
                reply = read_message(server)
                if reply is None:
                    break
                if rule and rule.lose:
                    break  # applied by the server, its reply never delivered: both ends reset
                if rule and rule.stall:
                    time.sleep(rule.stall)
                answered = _decode(reply) if rule and rule.write_concern_error else None
                if rule and answered:
                    flags = struct.unpack_from("<I", reply, 16)[0]
                    spoiled = {**answered[2], "writeConcernError": rule.write_concern_error}
                    reply = _encode(answered[0], answered[1], flags, spoiled)
                client.sendall(reply)
        except OSError:
            pass
        finally:
            client.close()
            server.close()
