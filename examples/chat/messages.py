"""The chat's protocol: checking what clients send, and building what the server sends.

Clients send JSON objects ``{"type": "message", "text": "..."}``. The server sends JSON
objects whose ``type`` is ``"members"``, ``"joined"``, ``"left"``, ``"message"`` or
``"error"``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "MAX_NAME_LENGTH",
    "MAX_TEXT_LENGTH",
    "ROOM_PATTERN",
    "InvalidMessage",
    "check_name",
    "check_text_message",
    "chat_message",
    "error",
    "joined",
    "left",
    "members",
]

MAX_NAME_LENGTH = 32
MAX_TEXT_LENGTH = 2000
#: Room names in the URL: letters, digits, ``-`` and ``_``, up to 32 characters.
ROOM_PATTERN = r"[A-Za-z0-9_-]{1,32}"

_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


class InvalidMessage(ValueError):
    """A client sent something the chat does not understand; the text says what."""


def check_name(name: str) -> str:
    """Return the display name without surrounding spaces, or raise :class:`InvalidMessage`."""
    name = name.strip()
    if not name:
        raise InvalidMessage("pick a name")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidMessage(f"a name has at most {MAX_NAME_LENGTH} characters")
    if _CONTROL_CHARACTERS.search(name):
        raise InvalidMessage("a name cannot contain control characters")
    return name


def check_text_message(data: Any) -> str:
    """Return the text of a client's chat message, or raise :class:`InvalidMessage`."""
    if not isinstance(data, dict):
        raise InvalidMessage(f"expected a JSON object, got {type(data).__name__}")
    if data.get("type") != "message":
        raise InvalidMessage(f"unknown message type {data.get('type')!r}")
    text = data.get("text")
    if not isinstance(text, str):
        raise InvalidMessage('"text" must be a string')
    text = text.strip()
    if not text:
        raise InvalidMessage("empty message")
    if len(text) > MAX_TEXT_LENGTH:
        raise InvalidMessage(f"a message has at most {MAX_TEXT_LENGTH} characters")
    return text


def chat_message(name: str, text: str) -> dict[str, Any]:
    """What everyone in the room receives when ``name`` says ``text``."""
    sent_at = datetime.now(UTC).isoformat(timespec="seconds")
    return {"type": "message", "name": name, "text": text, "time": sent_at}


def members(names: list[str]) -> dict[str, Any]:
    """Who is in the room now."""
    return {"type": "members", "members": names}


def joined(name: str) -> dict[str, Any]:
    """``name`` came in."""
    return {"type": "joined", "name": name}


def left(name: str) -> dict[str, Any]:
    """``name`` went away."""
    return {"type": "left", "name": name}


def error(text: str) -> dict[str, Any]:
    """The last message was not understood; the connection stays open."""
    return {"type": "error", "error": text}
