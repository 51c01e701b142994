"""The chat room endpoint: one WebSocket per member, messages relayed to the whole room."""

from __future__ import annotations

import asyncio
from typing import Any

from aioendpoints import CloseCode, WebSocket, WebSocketClose, WebSocketEndpoint

from . import messages
from .rooms import ROOMS_KEY

__all__ = ["ChatRoom"]


class ChatRoom(WebSocketEndpoint):
    """``/ws/rooms/{room}?name=...``: join the room under a name and chat.

    Invalid JSON closes the connection with 1007 and a binary frame with 1003 (both done
    by aioendpoints); a well-formed message the chat does not understand gets an
    ``error`` message back and the connection stays open.
    """

    encoding = "json"

    async def on_connect(self, ws: WebSocket) -> None:
        """Accept, check the name, join the room and tell everyone."""
        await ws.accept()
        try:
            name = messages.check_name(ws.query_params.get("name", ""))
        except messages.InvalidMessage as problem:
            # Accepted first, so that the browser gets the reason with the close code.
            raise WebSocketClose(CloseCode.POLICY_VIOLATION, str(problem)) from None
        ws.state.name = name
        ws.state.room = room = ws.path_params["room"]
        rooms = ws.app[ROOMS_KEY]
        rooms.join(room, ws)
        await rooms.publish(room, messages.joined(name))
        await self._announce_members(ws)

    async def on_receive(self, ws: WebSocket, data: Any) -> None:
        """Relay a chat message to the room, or tell the sender what was wrong with it."""
        try:
            text = messages.check_text_message(data)
        except messages.InvalidMessage as problem:
            await ws.send(messages.error(str(problem)))
            return
        await ws.app[ROOMS_KEY].publish(ws.state.room, messages.chat_message(ws.state.name, text))

    async def on_disconnect(self, ws: WebSocket, close_code: int) -> None:
        """Leave the room, if the connection got that far, and tell the others."""
        room = getattr(ws.state, "room", None)
        if room is None:
            return
        ws.app[ROOMS_KEY].leave(room, ws)
        # The server may cancel this task as soon as the peer's connection is gone (aiohttp's
        # handler_cancellation, on in its test server): the others must hear it all the same.
        await asyncio.shield(self._announce_departure(ws))

    async def _announce_departure(self, ws: WebSocket) -> None:
        await ws.app[ROOMS_KEY].publish(ws.state.room, messages.left(ws.state.name))
        await self._announce_members(ws)

    async def _announce_members(self, ws: WebSocket) -> None:
        rooms = ws.app[ROOMS_KEY]
        room = ws.state.room
        names = [member.state.name for member in rooms.members(room)]
        await rooms.publish(room, messages.members(names))
