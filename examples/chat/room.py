"""The chat room endpoint: one WebSocket per member, messages published to the room's group."""

from __future__ import annotations

import logging
from typing import Any, Final

import msgspec
from aiohttp import web

import aioendpoints
from aioendpoints import (
    BroadcastUnavailable,
    CloseCode,
    MessageRejected,
    WebSocket,
    WebSocketClose,
    WebSocketEndpoint,
    on_message,
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

    Messages are typed (see :mod:`examples.chat.messages`): one that is not JSON or not a
    chat message gets aioendpoints' ``error`` message back and the connection stays open;
    a binary frame closes it with 1003.
    """

    async def on_connect(self, ws: WebSocket) -> None:
        """Accept, join the room, list its members here and tell everyone."""
        await ws.accept()
        name: str = ws.principal  # checked at login, signed in the cookie
        ws.user = name  # for aioendpoints.connections(), send_to_user() and disconnect()
        ws.state.id = member_id = messages.new_id()
        ws.state.name = name
        ws.state.room = room = room_group(ws.path_params["room"])
        server_id = ws.app[SERVER_ID_KEY]
        # Before joining, so that the page knows who it is before any room message.
        await ws.send(messages.Welcome(member_id, server_id))
        try:
            await ws.join(member_group(member_id))
            # From where the page's browser module left off, if it was here before: it
            # gets what the room said meanwhile, or is told that the history is lost.
            await aioendpoints.resume(ws, room)
            # After joining: whoever this list misses joins later and announces itself.
            here = aioendpoints.group_members(ws.app, room)
            await ws.send(messages.Members(sorted(map(_member, here), key=_by_name)))
            await ws.publish(room, _room_message(messages.Joined(member_id, name, server_id)))
        except BroadcastUnavailable:
            raise WebSocketClose(CloseCode.TRY_AGAIN_LATER, "the chat is unavailable") from None
        ws.state.announced = True

    @on_message
    async def say(self, ws: WebSocket, message: messages.Say) -> None:
        """Publish a chat message to the room."""
        try:
            text = messages.check_text(message.text)
        except messages.InvalidMessage as problem:
            raise MessageRejected(str(problem)) from None
        await _publish(
            ws, ws.state.room, _room_message(messages.ChatMessage.now(ws.state.name, text))
        )

    @on_message
    async def present(self, ws: WebSocket, message: messages.Present) -> None:
        """Tell the member ``message.to``, who joined elsewhere, that this one is here."""
        await _publish(ws, member_group(message.to), messages.Members([_member(ws)]))

    async def on_disconnect(self, ws: WebSocket, close_code: int) -> None:
        """Tell the room, if this member was announced; it has already left the groups."""
        if not getattr(ws.state, "announced", False):
            return
        try:
            await ws.publish(
                ws.state.room, _room_message(messages.Left(ws.state.id, ws.state.name))
            )
        except BroadcastUnavailable as problem:
            logger.warning("%s left %s unannounced: %s", ws.state.name, ws.state.room, problem)


def _room_message(message: msgspec.Struct) -> dict[str, Any]:
    # Rooms keep a history, whose frames carry plain JSON (a dict) as their data.
    room_message: dict[str, Any] = msgspec.to_builtins(message)
    return room_message


async def _publish(ws: WebSocket, group: str, message: messages.Members | dict[str, Any]) -> None:
    try:
        await ws.publish(group, message)
    except BroadcastUnavailable:
        raise MessageRejected("the chat is unavailable, try again") from None


def _member(member: WebSocket) -> messages.Member:
    return messages.Member(member.state.id, member.state.name)


def _by_name(member: messages.Member) -> tuple[str, str]:
    return member.name.casefold(), member.id
