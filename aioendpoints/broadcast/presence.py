"""Presence: who is in a group, with what they chose to show, across every process.

A member that joins with ``presence={...}`` is listed by :func:`aioendpoints.presence`
until it leaves or its connection ends. With ``redis://``, each process keeps its members'
entries in Redis under keys that expire :data:`PRESENCE_TTL` seconds after the process last
refreshed them (every :data:`REFRESH_INTERVAL` seconds): a process that dies without
leaving drops out of every group's presence within :data:`PRESENCE_TTL` seconds.

Members that join with ``presence_events=True`` receive a JSON text frame when a member
with presence joins or leaves::

    {"group": "room:lobby", "presence": "join", "connection": "…", "data": {...}}
    {"group": "room:lobby", "presence": "leave", "connection": "…"}

A process that dies sends no leave events: its members just drop out of the presence.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod

__all__ = ["PRESENCE_TTL", "REFRESH_INTERVAL"]

#: Seconds after which the presence of a process that stopped refreshing it is gone.
PRESENCE_TTL = 30.0
#: Seconds between two refreshes of a process's presence entries.
REFRESH_INTERVAL = 10.0
#: The channel of a group's presence events, between processes (never a member's group).
EVENTS_PREFIX = "\x00presence\x00"


class PresenceStore(ABC):
    """Where the presence of every process's members is kept."""

    async def start(self) -> None:  # noqa: B027 - most stores have nothing to start
        """Begin refreshing this process's entries, if the store needs it."""

    async def stop(self) -> None:  # noqa: B027
        """Stop refreshing, and forget this process's entries."""

    @abstractmethod
    async def add(self, group: str, connection: str, data: bytes) -> None:
        """List ``connection`` in ``group`` with ``data`` (JSON)."""

    @abstractmethod
    async def remove(self, group: str, connection: str) -> None:
        """Take ``connection`` out of ``group``'s presence."""

    @abstractmethod
    async def members(self, group: str) -> dict[str, bytes]:
        """Every listed connection of ``group``, in every process, with its data."""


class MemoryPresence(PresenceStore):
    """Presence within one process."""

    def __init__(self) -> None:
        self._groups: dict[str, dict[str, bytes]] = {}

    async def add(self, group: str, connection: str, data: bytes) -> None:
        """List ``connection`` in ``group``."""
        self._groups.setdefault(group, {})[connection] = data

    async def remove(self, group: str, connection: str) -> None:
        """Take ``connection`` out of ``group``."""
        listed = self._groups.get(group)
        if listed is not None and listed.pop(connection, None) is not None and not listed:
            del self._groups[group]

    async def members(self, group: str) -> dict[str, bytes]:
        """``group``'s listed connections."""
        return dict(self._groups.get(group, {}))


def presence_event(group: str, kind: str, connection: str, data: bytes | None) -> bytes:
    """The JSON text of a join or leave event."""
    parts = [
        b'{"group":',
        json.dumps(group).encode(),
        b',"presence":"',
        kind.encode(),
        b'","connection":',
        json.dumps(connection).encode(),
    ]
    if data is not None:
        parts += [b',"data":', data]
    parts.append(b"}")
    return b"".join(parts)
