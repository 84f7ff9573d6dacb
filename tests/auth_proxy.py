"""A test-only TCP proxy in front of the embedded server that accepts PLAIN authentication.

nx-27017 has no authentication, so a MongoDB URI carrying a password cannot reach it.
This proxy answers pymongo's `saslStart` (mechanism PLAIN, one step) itself and forwards
every other message unchanged, so a full run can use a URI with a real password in it.
"""

from __future__ import annotations

import asyncio
import struct
import threading

import bson

OP_MSG = 2013


def _reply(request_id: int, document: dict) -> bytes:
    body = struct.pack("<I", 0) + b"\x00" + bson.encode(document)
    return struct.pack("<iiii", 16 + len(body), 0, request_id, OP_MSG) + body


class PlainAuthProxy:
    def __init__(self, listen_port: int, target_port: int) -> None:
        self.listen_port, self.target_port = listen_port, target_port
        self.authenticated: list[str] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)

        async def downstream() -> None:
            while data := await up_reader.read(65536):
                writer.write(data)
                await writer.drain()

        pump = asyncio.ensure_future(downstream())
        try:
            while True:
                header = await reader.readexactly(16)
                length, request_id, _, opcode = struct.unpack("<iiii", header)
                body = await reader.readexactly(length - 16)
                if opcode == OP_MSG and body[4] == 0:
                    command = bson.decode(body[5:5 + struct.unpack("<i", body[5:9])[0]])
                    if "saslStart" in command:
                        self.authenticated.append(command["payload"].split(b"\x00")[1].decode())
                        writer.write(_reply(request_id, {"conversationId": 1, "done": True, "payload": b"", "ok": 1.0}))
                        await writer.drain()
                        continue
                up_writer.write(header + body)
                await up_writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            pump.cancel()
            up_writer.close()
            writer.close()

    def start(self) -> "PlainAuthProxy":
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._client, "127.0.0.1", self.listen_port), self._loop).result(10)
        return self

    def stop(self) -> None:
        async def shutdown() -> None:
            self._server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
