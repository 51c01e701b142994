"""A light WebSocket load client: plain asyncio protocols and hand-built frames.

It does the least a client can (one precomputed masked frame per connection, a byte
counter for replies) so that the server under test, not the client, is the bottleneck.
"""

from __future__ import annotations

import asyncio
import base64
import os
import time
from collections.abc import Callable

__all__ = ["Connection", "connect", "masked_frame"]

OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x1, 0x2, 0x8, 0x9, 0xA
_MASK = b"\x37\xfa\x21\x3d"


def masked_frame(opcode: int, payload: bytes, mask: bytes = _MASK) -> bytes:
    """Build one final client frame: masked as RFC 6455 requires of clients."""
    length = len(payload)
    if length < 126:
        header = bytes((0x80 | opcode, 0x80 | length))
    elif length < 1 << 16:
        header = bytes((0x80 | opcode, 0x80 | 126)) + length.to_bytes(2, "big")
    else:
        header = bytes((0x80 | opcode, 0x80 | 127)) + length.to_bytes(8, "big")
    key = (mask * (length // 4 + 1))[:length]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(length, "big")
    return header + mask + masked


class Connection(asyncio.Protocol):
    """One client connection: the handshake, then whole frames from the server."""

    def __init__(self, host: str, port: int, path: str) -> None:
        self._request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
        self._buffer = bytearray()
        self._upgraded = False
        self._waiter: asyncio.Future[bytes] | None = None
        self.transport: asyncio.Transport | None = None
        self.handshake_done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.close_code: int | None = None
        # Load mode: each reply sends the next frame straight from data_received, with no
        # future or task switch per message, to keep the client's cost per message low.
        self._load_frame = b""
        self._load_left = 0
        self._load_done = 0
        self._load_deadline = 0.0
        self._load_sent_at = 0.0
        self._load_record: Callable[[float], None] | None = None
        self._load_finished: asyncio.Future[int] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self._request)

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        if not self._upgraded:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            status_line = bytes(buffer[: buffer.find(b"\r\n")])
            del buffer[: end + 4]
            if b" 101 " not in status_line:
                self._fail(ConnectionError(f"handshake refused: {status_line!r}"))
                return
            self._upgraded = True
            self.handshake_done.set_result(None)
        while len(buffer) >= 2:
            length = buffer[1] & 0x7F
            start = 2
            if length == 126:
                if len(buffer) < 4:
                    return
                length, start = int.from_bytes(buffer[2:4], "big"), 4
            elif length == 127:
                if len(buffer) < 10:
                    return
                length, start = int.from_bytes(buffer[2:10], "big"), 10
            end = start + length
            if len(buffer) < end:
                return
            opcode = buffer[0] & 0x0F
            if self._load_left and opcode < OP_CLOSE:
                del buffer[:end]
                self._load_reply()
                continue
            payload = bytes(buffer[start:end])
            del buffer[:end]
            if opcode == OP_PING:
                # uvicorn and python-websockets ping every 20 s and close unanswered sockets.
                if self.transport is not None:
                    self.transport.write(masked_frame(OP_PONG, payload))
                continue
            if opcode == OP_PONG:
                continue
            if opcode == OP_CLOSE:
                self.close_code = int.from_bytes(payload[:2], "big") if payload else 1005
                if self.transport is not None:
                    self.transport.close()
                return
            waiter = self._waiter
            if waiter is not None and not waiter.done():
                self._waiter = None
                waiter.set_result(payload)

    def _load_reply(self) -> None:
        now = time.perf_counter()
        if self._load_record is not None:
            self._load_record(now - self._load_sent_at)
        self._load_done += 1
        self._load_left -= 1
        if self._load_left and now < self._load_deadline:
            self._load_sent_at = now
            assert self.transport is not None
            self.transport.write(self._load_frame)
            return
        self._load_left = 0
        if self._load_finished is not None and not self._load_finished.done():
            self._load_finished.set_result(self._load_done)

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(ConnectionError("connection lost"))
        if not self.closed.done():
            self.closed.set_result(None)

    def _fail(self, error: Exception) -> None:
        if not self.handshake_done.done():
            self.handshake_done.set_exception(error)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(error)
        if self._load_finished is not None and not self._load_finished.done():
            self._load_finished.set_exception(error)

    async def round_trip(self, frame: bytes) -> bytes:
        """Send a frame and return the payload of the next data frame from the server."""
        waiter: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._waiter = waiter
        assert self.transport is not None
        self.transport.write(frame)
        return await waiter

    def expect_message(self) -> asyncio.Future[bytes]:
        """A future for the payload of the next data frame the server sends unasked."""
        waiter: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._waiter = waiter
        return waiter

    async def round_trips(
        self, frame: bytes, count: int, deadline: float, record: Callable[[float], None] | None
    ) -> int:
        """Run up to ``count`` strict round trips before ``deadline``; return how many ran.

        ``record`` gets each round trip's duration in seconds.
        """
        if count <= 0:
            return 0
        assert self.transport is not None
        finished = self._load_finished = asyncio.get_running_loop().create_future()
        self._load_frame, self._load_left, self._load_done = frame, count, 0
        self._load_deadline, self._load_record = deadline, record
        self._load_sent_at = time.perf_counter()
        self.transport.write(frame)
        # The deadline bounds the load; the extra seconds bound a server that stopped answering.
        timeout = max(0.0, deadline - time.perf_counter()) + 10.0
        try:
            return await asyncio.wait_for(asyncio.shield(finished), timeout)
        finally:
            self._load_left = 0
            self._load_finished = None

    async def close(self, wait: float = 2.0) -> None:
        """Send a close frame (1000), wait briefly for the server's, then drop the socket."""
        if self.transport is None or self.transport.is_closing():
            return
        self.transport.write(masked_frame(OP_CLOSE, (1000).to_bytes(2, "big")))
        try:
            await asyncio.wait_for(asyncio.shield(self.closed), wait)
        except TimeoutError:
            self.transport.abort()


async def connect(host: str, port: int, path: str, wait: float = 10.0) -> Connection:
    """Open a connection and complete the WebSocket handshake within ``wait`` seconds."""
    loop = asyncio.get_running_loop()
    _, connection = await asyncio.wait_for(
        loop.create_connection(lambda: Connection(host, port, path), host, port), wait
    )
    await asyncio.wait_for(asyncio.shield(connection.handshake_done), wait)
    return connection
