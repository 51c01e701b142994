"""Who is in which room, and sending a message to everyone in a room.

This is the only part of the chat that keeps state, and it keeps it in this process: two
server processes do not share rooms. Its three operations are the ones aioendpoints'
groups provide (join, leave, publish, and the members of a group), so it can be swapped
for groups, and Redis behind them, without touching the endpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Final

from aiohttp import web

from aioendpoints import WebSocket, WebSocketDisconnect

__all__ = ["ROOMS_KEY", "Rooms"]


class Rooms:
    """Rooms of connected WebSockets, in this process."""

    def __init__(self) -> None:
        # Insertion-ordered, so members are listed in the order they joined.
        self._rooms: dict[str, dict[WebSocket, None]] = {}

    def join(self, room: str, websocket: WebSocket) -> None:
        """Add ``websocket`` to ``room``."""
        self._rooms.setdefault(room, {})[websocket] = None

    def leave(self, room: str, websocket: WebSocket) -> None:
        """Remove ``websocket`` from ``room``; an empty room is forgotten."""
        members = self._rooms.get(room)
        if members is None:
            return
        members.pop(websocket, None)
        if not members:
            del self._rooms[room]

    def members(self, room: str) -> list[WebSocket]:
        """The connections in ``room``, in the order they joined."""
        return list(self._rooms.get(room, ()))

    async def publish(self, room: str, message: Any) -> None:
        """Send ``message`` to every connection in ``room``, all at once.

        A member whose connection is already gone is skipped: its own view is about to
        leave the room.
        """
        await asyncio.gather(*(_send_quietly(member, message) for member in self.members(room)))


async def _send_quietly(websocket: WebSocket, message: Any) -> None:
    with contextlib.suppress(WebSocketDisconnect):
        await websocket.send(message)


#: The application's :class:`Rooms`.
ROOMS_KEY: Final = web.AppKey("chat.rooms", Rooms)
