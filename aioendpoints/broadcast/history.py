"""History and positions: what a group keeps, where a message stands, what a join recovered.

A group with :class:`History` numbers its messages: each gets a :class:`Position`, the
group's *epoch* and an *offset* one greater than the message before, in every process that
shares the backend. The epoch names one unbroken run of offsets; it changes when the
history is lost (Redis flushed or restarted without persistence), so a client that kept a
position from an older epoch knows that it missed messages that cannot be replayed.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

__all__ = ["History", "HistoryRead", "HistorySettings", "Position", "Recovery"]

_EPOCH = re.compile(r"[0-9A-Za-z_-]{1,64}")


@dataclass(frozen=True, slots=True)
class History:
    """Keep a group's last ``size`` messages for ``ttl`` seconds, for recovery and replay.

    Pass it to :func:`aioendpoints.setup` (``history=History(size=1000, ttl=600)``) for
    every group, or a function of the group name that returns one, or ``None`` for a group
    without history.
    """

    #: How many of the latest messages each group keeps.
    size: int = 1000
    #: How many seconds a message stays in the history.
    ttl: float = 600.0

    def __post_init__(self) -> None:
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 1:
            raise ValueError(f"History size must be a positive int, got {self.size!r}")
        if isinstance(self.ttl, bool) or not isinstance(self.ttl, int | float) or self.ttl <= 0:
            raise ValueError(f"History ttl must be a positive number of seconds, got {self.ttl!r}")


#: What ``history=`` takes: one :class:`History` for every group, or a function that
#: gives each group its own (``None``: no history for that group).
HistorySettings = History | Callable[[str], History | None]


@dataclass(frozen=True, slots=True)
class Position:
    """Where a message stands in its group: the history's ``epoch`` and the ``offset``.

    ``str(position)`` is ``"<epoch>:<offset>"``, for a query string or the browser's
    storage; :meth:`parse` reads it back.
    """

    #: Names one unbroken run of offsets; a new epoch means the older history is gone.
    epoch: str
    #: The message's number in the group: 1 for the first, one more for each next one;
    #: 0 in a position taken before any message.
    offset: int

    def __post_init__(self) -> None:
        if not isinstance(self.epoch, str) or not _EPOCH.fullmatch(self.epoch):
            raise ValueError(
                "a position's epoch must be 1 to 64 letters, digits, '-' or '_', "
                f"got {self.epoch!r}"
            )
        if isinstance(self.offset, bool) or not isinstance(self.offset, int) or self.offset < 0:
            raise ValueError(f"a position's offset must be a non-negative int, got {self.offset!r}")

    def __str__(self) -> str:
        return f"{self.epoch}:{self.offset}"

    @classmethod
    def parse(cls, text: str) -> Position:
        """Read a position written by ``str()``; raise :class:`ValueError` if malformed."""
        if not isinstance(text, str):
            raise TypeError(f"Position.parse() takes a str, got {text!r}")
        epoch, separator, offset = text.rpartition(":")
        if not separator or not offset.isascii() or not offset.isdigit():
            raise ValueError(f"a position looks like '<epoch>:<offset>', got {text!r}")
        return cls(epoch, int(offset))


@dataclass(frozen=True, slots=True)
class Recovery:
    """What :meth:`WebSocket.join` did for a group with history.

    ``recovered`` is true when every message after ``since`` was replayed to the member
    before the live ones; false when there was no ``since``, or it is from an older epoch,
    or some messages after it are no longer kept: then the app should reload its state.
    ``position`` is the group's latest position when the member joined.
    """

    #: Whether the member got every message after ``since``, none twice.
    recovered: bool
    #: The group's latest position when the member joined.
    position: Position


class HistoryRead(NamedTuple):
    """What a backend read from a group's history."""

    #: The group's latest position.
    latest: Position
    #: The kept messages after ``since`` (all kept ones without it), oldest first, as
    #: ``(offset, JSON bytes)``.
    entries: Sequence[tuple[int, bytes]]


class Joining:
    """A member joining a group with history, until it gets live messages like the others.

    Until its replay is sent, live messages are held back. After it, live messages the
    replay already had are skipped: this process may receive them from Redis after the
    history was read.
    """

    __slots__ = ("held", "latest", "transport")

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.held: list[tuple[Position, bytes]] = []
        self.latest: Position | None = None  # set once the replay is sent

    def replayed(self, replay: list[bytes], latest: Position, delivered: Position | None) -> bool:
        """Send the replay and the held messages after it; tell whether it is done joining."""
        frames = replay + [frame for position, frame in self.held if _after(position, latest)]
        self.held.clear()
        if frames:
            self.transport.write(b"".join(frames))
        self.latest = latest
        # Before the group's first message there is nothing this process could still
        # deliver late: the member is done.
        return latest.offset == 0 or (delivered is not None and not _after(latest, delivered))

    @property
    def joined(self) -> bool:
        """Whether its replay is sent: from then on it gets every later message."""
        return self.latest is not None

    def receive(self, position: Position, frame: bytes, send: bool) -> bool:
        """Take a live message; tell whether the member is done joining."""
        if self.latest is None:
            if send:
                self.held.append((position, frame))
            return False
        if not _after(position, self.latest):
            return False  # the replay had it
        if send and not self.transport.is_closing():
            self.transport.write(frame)
        return True


def _after(position: Position, other: Position) -> bool:
    """Whether ``position`` comes after ``other``; any position of another epoch does."""
    return position.epoch != other.epoch or position.offset > other.offset


def recovered(since: Position | None, read: HistoryRead) -> bool:
    """Whether ``read`` holds every message after ``since``, nothing missing."""
    if since is None or since.epoch != read.latest.epoch or since.offset > read.latest.offset:
        return False
    if since.offset == read.latest.offset:
        return True
    entries = read.entries
    return bool(entries) and entries[0][0] == since.offset + 1


def history_payload(message: object, dumps: Callable[[object], str | bytes]) -> bytes:
    """The JSON bytes a group with history keeps and sends as ``data`` for ``message``."""
    if isinstance(message, bytes | bytearray | memoryview):
        raise TypeError(
            "a group with history sends JSON text frames: publish a dict, list or str, "
            "not bytes (encode binary data as base64 text first)"
        )
    if not isinstance(message, dict | list | str):
        raise TypeError(
            "publish() takes a dict or list (sent as JSON), a str (text) or bytes (binary), "
            f"got {type(message).__name__}"
        )
    encoded = dumps(message)
    return encoded.encode() if isinstance(encoded, str) else encoded


def envelope(group: str, epoch: str, offset: int, data: bytes) -> bytes:
    """The JSON text a member gets: ``{"group", "epoch", "offset", "data"}``."""
    # Built by hand: the data is JSON already, and the epoch needs no escaping.
    return b"".join(
        (
            b'{"group":',
            json.dumps(group).encode(),
            b',"epoch":"',
            epoch.encode(),
            b'","offset":',
            str(offset).encode(),
            b',"data":',
            data,
            b"}",
        )
    )
