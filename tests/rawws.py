"""A raw WebSocket client for tests: the handshake and every frame built by hand.

Real clients refuse to send broken frames, so the bad-input, fault and property tests speak
RFC 6455 through plain asyncio sockets instead: any FIN/RSV bits, opcode, mask or declared
length, fragments, truncated frames, and a TCP reset on demand. It also reads the server's
frames, close codes and HTTP status lines.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import socket
import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum

__all__ = [
    "Close",
    "Frame",
    "HTTPResponse",
    "Opcode",
    "RawWebSocket",
    "build_frame",
    "close_payload",
    "deflate",
    "http_request",
    "upgrade_request",
]

_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#: Seconds any single read waits before the test fails instead of hanging.
DEFAULT_TIMEOUT = 5.0


class Opcode(IntEnum):
    """Frame opcodes (RFC 6455 §5.2), with two reserved ones for tests."""

    CONTINUATION = 0x0
    TEXT = 0x1
    BINARY = 0x2
    RESERVED_DATA = 0x3
    CLOSE = 0x8
    PING = 0x9
    PONG = 0xA
    RESERVED_CONTROL = 0xB


@dataclass(frozen=True)
class Frame:
    """One frame as the server sent it."""

    fin: bool
    rsv: int
    opcode: int
    payload: bytes


@dataclass(frozen=True)
class Close:
    """How the server ended the connection: its close frame's code and reason, if any.

    ``code`` is ``None`` when the TCP connection ended without a close frame, and 1005
    when a close frame came without a code.
    """

    code: int | None
    reason: str = ""


@dataclass(frozen=True)
class HTTPResponse:
    """An HTTP response head: status code and headers (lower-cased names)."""

    status: int
    headers: Mapping[str, str]


def build_frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv: int = 0,
    mask: bool = True,
    declared_length: int | None = None,
    mask_key: bytes | None = None,
) -> bytes:
    """Encode one frame; ``declared_length`` may lie about the payload's length."""
    length = len(payload) if declared_length is None else declared_length
    head = bytearray([(0x80 if fin else 0) | (rsv & 0x7) << 4 | opcode & 0xF])
    mask_bit = 0x80 if mask else 0
    if length < 126:
        head.append(mask_bit | length)
    elif length < 1 << 16:
        head.append(mask_bit | 126)
        head += struct.pack("!H", length)
    else:
        head.append(mask_bit | 127)
        head += struct.pack("!Q", length)
    if not mask:
        return bytes(head) + payload
    key = os.urandom(4) if mask_key is None else mask_key
    return bytes(head) + key + _apply_mask(key, payload)


def close_payload(code: int, reason: bytes = b"") -> bytes:
    """A close frame's payload: the code in network order, then the reason."""
    return struct.pack("!H", code) + reason


def deflate(payload: bytes) -> bytes:
    """Compress a message as permessage-deflate does (RFC 7692 §7.2.1)."""
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    data = compressor.compress(payload) + compressor.flush(zlib.Z_SYNC_FLUSH)
    return data.removesuffix(b"\x00\x00\xff\xff")


def upgrade_request(
    path: str,
    host: str,
    *,
    method: str = "GET",
    key: str | None = None,
    version: str | None = "13",
    headers: Mapping[str, str] | None = None,
) -> bytes:
    """An opening handshake request; pass ``None`` to leave a header out."""
    lines = [
        f"{method} {path} HTTP/1.1",
        f"Host: {host}",
        "Upgrade: websocket",
        "Connection: Upgrade",
    ]
    if key is not None:
        lines.append(f"Sec-WebSocket-Key: {key}")
    if version is not None:
        lines.append(f"Sec-WebSocket-Version: {version}")
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def new_key() -> str:
    """A fresh random ``Sec-WebSocket-Key``."""
    return base64.b64encode(os.urandom(16)).decode()


async def http_request(
    host: str, port: int, request: bytes, within: float = DEFAULT_TIMEOUT
) -> HTTPResponse:
    """Send a raw HTTP request and read the response head."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(request)
        return await asyncio.wait_for(_read_response_head(reader), within)
    finally:
        writer.close()
        await _wait_closed(writer)


class RawWebSocket:
    """A client connection after a hand-made handshake; frames go out exactly as built."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        #: The handshake response's headers (lower-cased names).
        self.handshake_headers: Mapping[str, str] = {}

    @classmethod
    async def connect(
        cls,
        host: str,
        port: int,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        within: float = DEFAULT_TIMEOUT,
        receive_buffer: int | None = None,
    ) -> RawWebSocket:
        """Open a connection and complete the handshake; fail unless the server says 101.

        ``receive_buffer`` sets the socket's ``SO_RCVBUF`` before it connects, so that the
        TCP window stays that small: a reader that stops holds the server up sooner.
        """
        if receive_buffer is None:
            reader, writer = await asyncio.open_connection(host, port)
        else:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
            sock.setblocking(False)
            try:
                await asyncio.get_running_loop().sock_connect(sock, (host, port))
            except BaseException:
                sock.close()
                raise
            reader, writer = await asyncio.open_connection(sock=sock)
        key = new_key()
        writer.write(upgrade_request(path, f"{host}:{port}", key=key, headers=headers))
        response = await asyncio.wait_for(_read_response_head(reader), within)
        if response.status != 101:
            writer.close()
            raise ConnectionError(f"handshake refused with HTTP {response.status}")
        expected = base64.b64encode(hashlib.sha1((key + _GUID).encode()).digest()).decode()
        if response.headers.get("sec-websocket-accept") != expected:
            writer.close()
            raise ConnectionError("wrong Sec-WebSocket-Accept in the handshake response")
        websocket = cls(reader, writer)
        websocket.handshake_headers = response.headers
        return websocket

    # Sending ---------------------------------------------------------------------------

    def send_raw(self, data: bytes) -> None:
        """Write bytes as they are."""
        self.writer.write(data)

    def send_frame(self, opcode: int, payload: bytes = b"", **options: object) -> None:
        """Write one frame; see :func:`build_frame` for the options."""
        self.writer.write(build_frame(opcode, payload, **options))  # type: ignore[arg-type]

    def send_text(self, text: str) -> None:
        """Write a masked, final text frame."""
        self.send_frame(Opcode.TEXT, text.encode())

    def send_close(self, code: int | None = 1000, reason: bytes = b"") -> None:
        """Write a close frame, with no payload when ``code`` is ``None``."""
        self.send_frame(Opcode.CLOSE, b"" if code is None else close_payload(code, reason))

    # Receiving -------------------------------------------------------------------------

    async def read_frame(self, within: float = DEFAULT_TIMEOUT) -> Frame:
        """Read the server's next frame; ``asyncio.IncompleteReadError`` at end of stream."""
        return await asyncio.wait_for(self._read_frame(), within)

    async def _read_frame(self) -> Frame:
        first, second = await self.reader.readexactly(2)
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", await self.reader.readexactly(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", await self.reader.readexactly(8))
        key = await self.reader.readexactly(4) if second & 0x80 else b""
        payload = await self.reader.readexactly(length)
        if key:
            payload = _apply_mask(key, payload)
        return Frame(bool(first & 0x80), first >> 4 & 0x7, first & 0xF, payload)

    async def read_message(self, within: float = DEFAULT_TIMEOUT) -> Frame:
        """Read the next data frame, answering nothing and skipping pings and pongs."""
        while True:
            frame = await self.read_frame(within)
            if frame.opcode not in (Opcode.PING, Opcode.PONG):
                return frame

    async def read_text(self, within: float = DEFAULT_TIMEOUT) -> str:
        """Read the next data frame, which must be text, decoded."""
        frame = await self.read_message(within)
        if frame.opcode != Opcode.TEXT:
            raise AssertionError(f"expected a text frame, got {frame}")
        return frame.payload.decode()

    async def read_close(self, within: float = DEFAULT_TIMEOUT) -> Close:
        """Read until the server's close frame or the end of the stream, and say which."""
        async with asyncio.timeout(within):
            while True:
                try:
                    frame = await self._read_frame()
                except (asyncio.IncompleteReadError, ConnectionError):
                    return Close(None)
                if frame.opcode == Opcode.CLOSE:
                    if len(frame.payload) < 2:
                        return Close(1005)
                    (code,) = struct.unpack("!H", frame.payload[:2])
                    return Close(code, frame.payload[2:].decode(errors="replace"))

    async def closed_by_server(self, within: float = DEFAULT_TIMEOUT) -> bool:
        """Wait for the server to end the TCP connection; ``False`` if it is still open."""
        try:
            async with asyncio.timeout(within):
                while await self.reader.read(65536):
                    pass
        except TimeoutError:
            return False
        except ConnectionError:
            return True
        return True

    # Ending ----------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Close the socket without a closing handshake."""
        self.writer.close()
        await _wait_closed(self.writer)

    def reset(self) -> None:
        """Drop the connection with a TCP reset (SO_LINGER 0), as a crashed peer does."""
        sock = self.writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.transport.abort()


async def _read_response_head(reader: asyncio.StreamReader) -> HTTPResponse:
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    _version, status, *_ = status_line.split(" ", 2)
    headers = {}
    for line in header_lines:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    return HTTPResponse(int(status), headers)


async def _wait_closed(writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        await writer.wait_closed()


def _apply_mask(key: bytes, payload: bytes) -> bytes:
    if not payload:
        return b""
    # XOR as one big integer: much faster than a per-byte loop for large payloads.
    repeated = (key * (len(payload) // 4 + 1))[: len(payload)]
    masked = int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")
    return masked.to_bytes(len(payload), "big")
