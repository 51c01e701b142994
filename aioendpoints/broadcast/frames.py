"""Messages to WebSocket frames, built once per publish and written to every member."""

from __future__ import annotations

import struct

from aiohttp import WSMsgType

from ..group_hub import Message
from ..serialization import JSONDumps

__all__ = ["MAX_INBOUND_SIZE", "Message", "encode_message", "inbound_problem", "server_frame"]

#: Frame opcodes (RFC 6455 §5.2).
TEXT = int(WSMsgType.TEXT)
BINARY = int(WSMsgType.BINARY)

#: The largest payload accepted from another process, by default (16 MiB).
MAX_INBOUND_SIZE = 16 * 1024 * 1024

_SHORT = struct.Struct("!BB")
_MEDIUM = struct.Struct("!BBH")
_LONG = struct.Struct("!BBQ")


def encode_message(message: Message, dumps: JSONDumps) -> tuple[int, bytes]:
    """Return the frame opcode and the payload bytes for ``message``."""
    if isinstance(message, str):
        return TEXT, message.encode()
    if isinstance(message, bytes | bytearray | memoryview):
        return BINARY, bytes(message)
    if isinstance(message, dict | list):
        encoded = dumps(message)
        return TEXT, encoded.encode() if isinstance(encoded, str) else encoded
    from ..messages.codecs import typed_encoder  # here: the messages package imports groups

    encode = typed_encoder(type(message))
    if encode is not None:
        return TEXT, encode(message)
    raise TypeError(
        "publish() takes a dict or list (sent as JSON), a msgspec Struct or pydantic model "
        f"(sent as JSON), a str (text) or bytes (binary), got {type(message).__name__}"
    )


def server_frame(opcode: int, payload: bytes) -> bytes:
    """One unfragmented, unmasked, uncompressed frame, as a server sends it (RFC 6455 §5.2).

    Uncompressed frames are valid on connections that negotiated permessage-deflate too
    (RFC 7692 §6: the RSV1 bit says which messages are compressed), so the same bytes
    can go to every member.
    """
    length = len(payload)
    first = 0x80 | opcode  # FIN
    if length < 126:
        header = _SHORT.pack(first, length)
    elif length < 1 << 16:
        header = _MEDIUM.pack(first, 126, length)
    else:
        header = _LONG.pack(first, 127, length)
    return header + payload


def inbound_problem(opcode: int, payload: bytes, max_size: int) -> str | None:
    """Why a message that came from outside this process must not reach a socket, if it must not.

    Only data frames may go out (a close frame, a ping or a reserved opcode written to every
    member would be an injection), text must be valid UTF-8 (RFC 6455 §8.1), and the payload
    at most ``max_size`` bytes. ``None`` when the message is fine.
    """
    if opcode != TEXT and opcode != BINARY:
        return f"opcode {opcode:#x} is not a text or binary frame"
    if len(payload) > max_size:
        return f"{len(payload)} bytes is over the limit of {max_size}"
    if opcode == TEXT:
        try:
            payload.decode()
        except UnicodeDecodeError:
            return "its text is not valid UTF-8"
    return None
