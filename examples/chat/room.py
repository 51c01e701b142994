"""The chat room endpoint: one WebSocket per member, messages published to the room's group."""

from __future__ import annotations

import logging
from typing import Any, Final

from aiohttp import web

import aioendpoints
from aioendpoints import (
    BroadcastUnavailable,
    CloseCode,
    WebSocket,
    WebSocketClose,
    WebSocketEndpoint,
)

from . import messages

__all__ = ["SERVER_ID_KEY", "ChatRoom", "member_group", "room_group"]

logger = logging.getLogger("examples.chat")

#: This server process's id, sent with ``welcome`` and ``joined``: a page answers a
#: ``joined`` only when it came through another server.
SERVER_ID_KEY: Final = web.AppKey("chat.server_id", str)


def room_group(room: str) -> str:
    """The group of everyone in ``room``."""
    return f"chat:room:{room}"


def member_group(member_id: str) -> str:
    """The group of one member, for answers meant for it alone."""
    return f"chat:member:{member_id}"


class ChatRoom(WebSocketEndpoint):
    """``/ws/rooms/{room}``: join the room under the name of the login cookie, and chat.

    Invalid JSON closes the connection with 1007 and a binary frame with 1003 (both done
    by aioendpoints); a well-formed message the chat does not understand gets an
    ``error`` message back and the connection stays open.
    """

    encoding = "json"

    async def on_connect(self, ws: WebSocket) -> None:
        """Accept, join the room, list its members here and tell everyone."""
        await ws.accept()
        name: str = ws.principal  # checked at login, signed in the cookie
        ws.state.id = member_id = messages.new_id()
        ws.state.name = name
        ws.state.room = room = room_group(ws.path_params["room"])
        server_id = ws.app[SERVER_ID_KEY]
        # Before joining, so that the page knows who it is before any room message.
        await ws.send(messages.welcome(member_id, server_id))
        try:
            await ws.join(member_group(member_id))
            await ws.join(room)
            # After joining: whoever this list misses joins later and announces itself.
            here = aioendpoints.group_members(ws.app, room)
            await ws.send(messages.present(sorted(map(_identity, here), key=_by_name)))
            await ws.publish(room, messages.joined(member_id, name, server_id))
        except BroadcastUnavailable:
            raise WebSocketClose(CloseCode.TRY_AGAIN_LATER, "the chat is unavailable") from None
        ws.state.announced = True

    async def on_receive(self, ws: WebSocket, data: Any) -> None:
        """Publish a chat message or a presence answer, or say what was wrong with it."""
        try:
            match messages.parse(data):
                case messages.Say(text):
                    await ws.publish(ws.state.room, messages.chat_message(ws.state.name, text))
                case messages.Present(to):
                    await ws.publish(member_group(to), messages.present([_identity(ws)]))
        except messages.InvalidMessage as problem:
            await ws.send(messages.error(str(problem)))
        except BroadcastUnavailable:
            await ws.send(messages.error("the chat is unavailable, try again"))

    async def on_disconnect(self, ws: WebSocket, close_code: int) -> None:
        """Tell the room, if this member was announced; it has already left the groups."""
        if not getattr(ws.state, "announced", False):
            return
        try:
            await ws.publish(ws.state.room, messages.left(ws.state.id, ws.state.name))
        except BroadcastUnavailable as problem:
            logger.warning("%s left %s unannounced: %s", ws.state.name, ws.state.room, problem)


def _identity(member: WebSocket) -> tuple[str, str]:
    return member.state.id, member.state.name


def _by_name(identity: tuple[str, str]) -> tuple[str, str]:
    member_id, name = identity
    return name.casefold(), member_id
