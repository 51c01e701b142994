"""Joining, leaving and publishing, the same suite over ``memory://`` and Redis."""

from __future__ import annotations

from typing import Any, ClassVar

import aiohttp
import pytest

from aioendpoints import WebSocket, WebSocketEndpoint, WebSocketRoutes

from .chat_app import make_app
from .conftest import RECEIVE_TIMEOUT, ChatServers, receive_json


async def test_member_receives_published_message(chat: ChatServers, group: str) -> None:
    """A message published to a group reaches its member."""
    member = await chat.connect(group)
    await chat.publish(group, {"text": "hi"})
    assert await receive_json(member) == {"text": "hi"}


async def test_every_member_receives_the_message(chat: ChatServers, group: str) -> None:
    """Every member of the group gets the message."""
    members = [await chat.connect(group) for _ in range(3)]
    await chat.publish(group, {"text": "all"})
    for member in members:
        assert await receive_json(member) == {"text": "all"}


async def test_publisher_receives_its_own_message(chat: ChatServers, group: str) -> None:
    """A member that publishes gets its own message unless it excludes itself."""
    member = await chat.connect(group)
    await member.send_json({"publish": {"text": "me too"}, "group": group})
    assert await receive_json(member) == {"text": "me too"}


async def test_exclude_self_skips_the_publisher(chat: ChatServers, group: str) -> None:
    """``exclude_self=True`` sends to everyone but the publisher."""
    publisher = await chat.connect(group)
    other = await chat.connect(group)
    await publisher.send_json({"publish": {"n": 1}, "group": group, "exclude_self": True})
    await publisher.send_json({"publish": {"n": 2}, "group": group})
    assert await receive_json(other) == {"n": 1}
    assert await receive_json(other) == {"n": 2}
    assert await receive_json(publisher) == {"n": 2}


async def test_member_that_left_receives_nothing(chat: ChatServers, group: str) -> None:
    """After ``leave()``, the group's messages no longer arrive."""
    member = await chat.connect(group, f"{group}:other")
    await member.send_json({"leave": group})
    assert await receive_json(member) == {"left": group}
    await chat.publish(group, {"text": "not for you"})
    await chat.publish(f"{group}:other", {"text": "for you"})
    assert await receive_json(member) == {"text": "for you"}


async def test_publish_to_group_without_members_is_not_an_error(
    chat: ChatServers, group: str
) -> None:
    """Publishing to an empty group succeeds and reaches nobody."""
    await chat.publish(group, {"text": "anyone?"})
    assert await chat.members_count(group) == 0


async def test_group_members_counts_this_process(chat: ChatServers, group: str) -> None:
    """``group_members()`` lists the group's members connected to this process."""
    await chat.connect(group)
    await chat.connect(group)
    await chat.connect(f"{group}:other")
    assert await chat.members_count(group) == 2


@pytest.mark.parametrize(
    ("message", "frame_type", "data"),
    [
        ({"text": "hi"}, aiohttp.WSMsgType.TEXT, '{"text":"hi"}'),
        ([1, 2, 3], aiohttp.WSMsgType.TEXT, "[1,2,3]"),
        ("plain text", aiohttp.WSMsgType.TEXT, "plain text"),
        (b"\x00\xffbinary", aiohttp.WSMsgType.BINARY, b"\x00\xffbinary"),
    ],
    ids=["dict", "list", "str", "bytes"],
)
async def test_message_types_map_to_frames(
    broadcast_url: str,
    aiohttp_client: Any,
    group: str,
    message: Any,
    frame_type: aiohttp.WSMsgType,
    data: str | bytes,
) -> None:
    """dict and list go as JSON text, str as text, bytes as binary."""
    app = make_app(broadcast_url)
    client = await aiohttp_client(app)
    member = await client.ws_connect("/chat")
    await receive_json(member)
    await member.send_json({"join": group})
    await receive_json(member)
    import aioendpoints

    await aioendpoints.publish(app, group, message)
    received = await member.receive(timeout=RECEIVE_TIMEOUT)
    assert (received.type, received.data) == (frame_type, data)


async def test_publish_rejects_other_types(chat: ChatServers, group: str) -> None:
    """Publishing something that is not dict, list, str or bytes names the type."""
    import aioendpoints

    with pytest.raises(TypeError, match="got int"):
        await aioendpoints.publish(chat.members.server.app, group, 42)


async def test_order_is_kept_over_1000_messages(chat: ChatServers, group: str) -> None:
    """Messages from one publisher arrive at every member in publish order."""
    members = [await chat.connect(group) for _ in range(2)]
    response = await chat.publisher.post(f"/publish/{group}?count=1000")
    assert response.status == 204
    for member in members:
        received = [(await receive_json(member))["seq"] for _ in range(1000)]
        assert received == list(range(1000))


async def test_endpoint_joins_declared_groups(
    broadcast_url: str, aiohttp_client: Any, group: str
) -> None:
    """``groups = [...]`` on an endpoint joins them right after accept."""
    routes = WebSocketRoutes()

    @routes.websocket_route("/lobby")
    class Lobby(WebSocketEndpoint):
        groups: ClassVar[list[str]] = [group]

    app = make_app(broadcast_url)
    app.add_routes(routes)
    client = await aiohttp_client(app)
    member = await client.ws_connect("/lobby")
    await ChatServers(client, client).wait_members(group, 1)
    import aioendpoints

    await aioendpoints.publish(app, group, "welcome")
    assert (await member.receive_str(timeout=RECEIVE_TIMEOUT)) == "welcome"


async def test_endpoint_groups_method_uses_route_params(
    broadcast_url: str, aiohttp_client: Any, group: str
) -> None:
    """A ``groups(self, ws)`` method names groups from the route's parameters."""
    routes = WebSocketRoutes()

    @routes.websocket_route("/rooms/{room}")
    class Room(WebSocketEndpoint):
        def groups(self, ws: WebSocket) -> list[str]:
            return [f"{group}:{ws.path_params['room']}"]

    app = make_app(broadcast_url)
    app.add_routes(routes)
    client = await aiohttp_client(app)
    await client.ws_connect("/rooms/blue")
    await ChatServers(client, client).wait_members(f"{group}:blue", 1)
    assert await ChatServers(client, client).members_count(f"{group}:red") == 0


async def test_member_leaves_when_client_closes(chat: ChatServers, group: str) -> None:
    """A connection closed by its client leaves its groups."""
    member = await chat.connect(group, f"{group}:other")
    await member.close()
    await chat.wait_members(group, 0)
    await chat.wait_members(f"{group}:other", 0)


async def test_member_leaves_when_connection_drops(chat: ChatServers, group: str) -> None:
    """A connection that drops without a close frame leaves its groups."""
    member = await chat.connect(group)
    connection = member._response.connection
    assert connection is not None
    assert connection.transport is not None
    connection.transport.abort()
    await chat.wait_members(group, 0)


async def test_member_leaves_when_view_fails(
    broadcast_url: str, aiohttp_client: Any, group: str
) -> None:
    """A view that raises after joining leaves its groups (and closes with 1011)."""
    routes = WebSocketRoutes()

    @routes.websocket_route("/fails")
    async def fails(ws: WebSocket) -> None:
        await ws.accept()
        await ws.join(group)
        await ws.receive()
        raise RuntimeError("boom")

    app = make_app(broadcast_url)
    app.add_routes(routes)
    client = await aiohttp_client(app)
    member = await client.ws_connect("/fails")
    await ChatServers(client, client).wait_members(group, 1)
    await member.send_str("go")
    closing = await member.receive(timeout=RECEIVE_TIMEOUT)
    assert closing.type is aiohttp.WSMsgType.CLOSE
    assert closing.data == 1011
    await ChatServers(client, client).wait_members(group, 0)
