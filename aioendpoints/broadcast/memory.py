"""``memory://``: groups within one process, with no dependency.

A group with history keeps its messages in a ring buffer in the process: the latest
``size`` ones, each until ``ttl`` seconds old. Its epoch is chosen when the process first
uses the group, so a restarted process starts new epochs.
"""

from __future__ import annotations

import secrets
import time
from collections import deque

from .backend import BroadcastBackend, Receiver
from .history import History, HistoryRead, Position

__all__ = ["MemoryBackend"]


class _Ring:
    """One group's history: its epoch, its last offset and its kept messages."""

    __slots__ = ("epoch", "kept", "offset")

    def __init__(self, size: int) -> None:
        self.epoch = secrets.token_hex(8)
        self.offset = 0
        self.kept: deque[tuple[int, float, bytes]] = deque(maxlen=size)

    def forget_expired(self, ttl: float, now: float) -> None:
        kept = self.kept
        while kept and now - kept[0][1] > ttl:
            kept.popleft()


class MemoryBackend(BroadcastBackend):
    """The in-process backend: there are no other processes to reach.

    The publishing process delivers to its own members itself, so the pub/sub methods
    have nothing to do. Use it for one process; use Redis once there are several.
    """

    distributed = False

    def __init__(self) -> None:
        self._rings: dict[str, _Ring] = {}

    async def start(self, receive: Receiver) -> None:
        """Nothing to connect to."""

    async def stop(self) -> None:
        """Nothing to disconnect."""

    async def subscribe(self, group: str) -> None:
        """Every local member already gets every local message."""

    async def unsubscribe(self, group: str) -> None:
        """Nothing to undo."""

    async def publish(self, group: str, opcode: int, payload: bytes) -> None:
        """No other process to send to."""

    async def append(
        self, group: str, data: bytes, history: History, *, exclusion: int = 0
    ) -> Position:
        """Keep ``data`` in the group's ring buffer; the caller delivers it."""
        ring = self._ring(group, history)
        now = time.monotonic()
        ring.forget_expired(history.ttl, now)
        ring.offset += 1
        ring.kept.append((ring.offset, now, data))
        return Position(ring.epoch, ring.offset)

    async def read(
        self, group: str, history: History, since: Position | None, *, entries: bool = True
    ) -> HistoryRead:
        """The group's latest position and its kept messages after ``since``."""
        ring = self._ring(group, history)
        ring.forget_expired(history.ttl, time.monotonic())
        latest = Position(ring.epoch, ring.offset)
        if not entries:
            return HistoryRead(latest, ())
        after = since.offset if since is not None and since.epoch == ring.epoch else 0
        return HistoryRead(
            latest, [(offset, data) for offset, _, data in ring.kept if offset > after]
        )

    def _ring(self, group: str, history: History) -> _Ring:
        ring = self._rings.get(group)
        if ring is None:
            ring = self._rings[group] = _Ring(history.size)
        elif ring.kept.maxlen != history.size:
            ring.kept = deque(ring.kept, maxlen=history.size)
        return ring
