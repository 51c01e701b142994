"""The chat's protocol: typed messages, described at ``/asyncapi.html`` when the demo runs.

Clients send :class:`Say` to talk, and :class:`Present` to tell a member who joined
through another server process that they are in the room too. The server sends
:class:`Welcome`, :class:`Members`, :class:`Joined`, :class:`Left` and :class:`ChatMessage`,
and aioendpoints' error message for a message it cannot take; :mod:`examples.chat`
explains how they make up the list of members.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Annotated

import msgspec

__all__ = [
    "MAX_NAME_LENGTH",
    "MAX_TEXT_LENGTH",
    "ROOM_PATTERN",
    "ChatMessage",
    "InvalidMessage",
    "Joined",
    "Left",
    "Member",
    "Members",
    "Present",
    "Say",
    "Welcome",
    "check_name",
    "new_id",
]

MAX_NAME_LENGTH = 32
MAX_TEXT_LENGTH = 2000
#: Room names in the URL: letters, digits, ``-`` and ``_``, up to 32 characters.
ROOM_PATTERN = r"[A-Za-z0-9_-]{1,32}"

_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")

MemberId = Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{32}$", description="A member's id.")]
ServerId = Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{32}$", description="A server's id.")]
Name = Annotated[str, msgspec.Meta(max_length=MAX_NAME_LENGTH, description="A display name.")]


class InvalidMessage(ValueError):
    """A client sent something the chat does not take; the text says what."""


# What clients send ------------------------------------------------------------------------


class Say(msgspec.Struct, tag="message"):
    """A chat message for the room."""

    text: Annotated[str, msgspec.Meta(max_length=MAX_TEXT_LENGTH, examples=["Hello!"])]


class Present(msgspec.Struct, tag="present"):
    """An answer to the member ``to``, who joined through another server: I am here too."""

    to: MemberId


# What the server sends --------------------------------------------------------------------


class Welcome(msgspec.Struct, tag="welcome"):
    """A new member's first message: its own id, and the id of the server it is on."""

    id: MemberId
    server: ServerId


class Member(msgspec.Struct):
    """A member of the room."""

    id: MemberId
    name: Name


class Members(msgspec.Struct, tag="present"):
    """These members are in the room: add them to the list."""

    members: list[Member]


class Joined(msgspec.Struct, tag="joined"):
    """``name`` came in through the server ``server``."""

    id: MemberId
    name: Name
    server: ServerId


class Left(msgspec.Struct, tag="left"):
    """``name`` went away."""

    id: MemberId
    name: Name


class ChatMessage(msgspec.Struct, tag="message"):
    """What everyone in the room receives when ``name`` says ``text``."""

    name: Name
    text: str
    time: Annotated[str, msgspec.Meta(description="When it was sent (ISO 8601, UTC).")]

    @classmethod
    def now(cls, name: str, text: str) -> ChatMessage:
        """``name`` says ``text``, now."""
        return cls(name, text, datetime.now(UTC).isoformat(timespec="seconds"))


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


def check_text(text: str) -> str:
    """Return the text without surrounding spaces, or raise :class:`InvalidMessage`."""
    text = text.strip()
    if not text:
        raise InvalidMessage("empty message")
    return text
