"""The chat's protocol: checking what clients send, and building what the server sends.

Clients send JSON objects: ``{"type": "message", "text": "..."}`` to talk, and
``{"type": "present", "to": member_id}`` to tell a member who joined through another
server process that they are in the room too. The server sends JSON objects whose
``type`` is ``"welcome"``, ``"present"``, ``"joined"``, ``"left"``, ``"message"`` or
``"error"``; :mod:`examples.chat` explains how they make up the list of members.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "MAX_NAME_LENGTH",
    "MAX_TEXT_LENGTH",
    "ROOM_PATTERN",
    "InvalidMessage",
    "Present",
    "Say",
    "chat_message",
    "check_name",
    "error",
    "joined",
    "left",
    "new_id",
    "parse",
    "present",
    "welcome",
]

MAX_NAME_LENGTH = 32
MAX_TEXT_LENGTH = 2000
#: Room names in the URL: letters, digits, ``-`` and ``_``, up to 32 characters.
ROOM_PATTERN = r"[A-Za-z0-9_-]{1,32}"

_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
_MEMBER_ID = re.compile(r"[0-9a-f]{32}")


class InvalidMessage(ValueError):
    """A client sent something the chat does not understand; the text says what."""


@dataclass(frozen=True)
class Say:
    """A client's chat message for the room."""

    text: str


@dataclass(frozen=True)
class Present:
    """A client's answer to the member ``to``, who joined through another server."""

    to: str


def new_id() -> str:
    """A fresh id for a member or a server process: 32 hex digits, unique everywhere."""
    return uuid.uuid4().hex


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


def parse(data: Any) -> Say | Present:
    """Check what a client sent; raise :class:`InvalidMessage` saying what is wrong."""
    if not isinstance(data, dict):
        raise InvalidMessage(f"expected a JSON object, got {type(data).__name__}")
    kind = data.get("type")
    if kind == "message":
        return Say(_check_text(data.get("text")))
    if kind == "present":
        to = data.get("to")
        if not isinstance(to, str) or not _MEMBER_ID.fullmatch(to):
            raise InvalidMessage('"to" must be a member id')
        return Present(to)
    raise InvalidMessage(f"unknown message type {kind!r}")


def _check_text(value: object) -> str:
    if not isinstance(value, str):
        raise InvalidMessage('"text" must be a string')
    text = value.strip()
    if not text:
        raise InvalidMessage("empty message")
    if len(text) > MAX_TEXT_LENGTH:
        raise InvalidMessage(f"a message has at most {MAX_TEXT_LENGTH} characters")
    return text


def welcome(member_id: str, server_id: str) -> dict[str, Any]:
    """A new member's first message: its own id, and the id of the server it is on."""
    return {"type": "welcome", "id": member_id, "server": server_id}


def present(members: list[tuple[str, str]]) -> dict[str, Any]:
    """These ``(id, name)`` members are in the room: add them to the list."""
    return {"type": "present", "members": [{"id": id_, "name": name} for id_, name in members]}


def joined(member_id: str, name: str, server_id: str) -> dict[str, Any]:
    """``name`` came in through the server ``server_id``."""
    return {"type": "joined", "id": member_id, "name": name, "server": server_id}


def left(member_id: str, name: str) -> dict[str, Any]:
    """``name`` went away."""
    return {"type": "left", "id": member_id, "name": name}


def chat_message(name: str, text: str) -> dict[str, Any]:
    """What everyone in the room receives when ``name`` says ``text``."""
    sent_at = datetime.now(UTC).isoformat(timespec="seconds")
    return {"type": "message", "name": name, "text": text, "time": sent_at}


def error(text: str) -> dict[str, Any]:
    """The last message was not understood; the connection stays open."""
    return {"type": "error", "error": text}
