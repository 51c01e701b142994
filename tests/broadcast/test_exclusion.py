"""One way to leave a connection out of a publish: ``exclude=`` in all three publish calls."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from aiohttp import web

import aioendpoints
from aioendpoints import WebSocket, WebSocketRoutes
from aioendpoints.broadcast import broadcast_of

from .conftest import RECEIVE_TIMEOUT


def room_app(publish: Any) -> web.Application:
    """Members join "room"; a member's first message makes it publish with ``publish``."""
    routes = WebSocketRoutes()

    @routes.websocket_route("/")
    async def member(ws: WebSocket) -> None:
        await ws.accept()
        await ws.join("room")
        await ws.send("joined")
        async for text in ws:
            await publish(ws, text)

    app = web.Application()
    aioendpoints.setup(app)
    app.add_routes(routes)
    return app


async def publish_in_turns(aiohttp_client: Any, publish: Any) -> list[str]:
    """Two members publish in turns, each leaving itself out; what each received, in order.

    Messages reach a member in the order they were published, so a member that got its own
    message would see it before the other's next one.
    """
    client = await aiohttp_client(room_app(publish))
    async with client.ws_connect("/") as first, client.ws_connect("/") as second:
        for ws in (first, second):
            assert await ws.receive_str(timeout=RECEIVE_TIMEOUT) == "joined"
        await first.send_str("one")
        got = [await second.receive_str(timeout=RECEIVE_TIMEOUT)]
        await second.send_str("two")
        got.append(await first.receive_str(timeout=RECEIVE_TIMEOUT))
        await first.send_str("three")
        got.append(await second.receive_str(timeout=RECEIVE_TIMEOUT))
        return got


async def test_ws_publish_exclude_leaves_the_publisher_out(aiohttp_client: Any) -> None:
    """ws.publish(group, message, exclude=ws): everyone but the publisher."""

    async def publish(ws: WebSocket, text: str) -> None:
        await ws.publish("room", text, exclude=ws)

    assert await publish_in_turns(aiohttp_client, publish) == ["one", "two", "three"]


async def test_app_publish_takes_the_same_exclude(aiohttp_client: Any) -> None:
    """aioendpoints.publish(app, group, message, exclude=ws) leaves that connection out."""

    async def publish(ws: WebSocket, text: str) -> None:
        await aioendpoints.publish(ws.app, "room", text, exclude=ws)

    assert await publish_in_turns(aiohttp_client, publish) == ["one", "two", "three"]


async def test_exclude_self_still_works_and_is_deprecated(aiohttp_client: Any) -> None:
    """exclude_self=True is the old spelling: it warns and leaves the publisher out."""
    warned: list[str] = []

    async def publish(ws: WebSocket, text: str) -> None:
        with pytest.warns(DeprecationWarning, match="write exclude=ws") as warnings:
            await ws.publish("room", text, exclude_self=True)
        warned.extend(str(warning.message) for warning in warnings)

    assert await publish_in_turns(aiohttp_client, publish) == ["one", "two", "three"]
    assert warned == ["ws.publish(..., exclude_self=True) is deprecated: write exclude=ws"] * 3


async def test_broadcast_of_takes_an_app_or_a_connection(aiohttp_client: Any) -> None:
    """broadcast_of() is the one way to reach a Broadcast, from an app or a connection."""
    found: list[object] = []

    async def publish(ws: WebSocket, text: str) -> None:
        found.append(broadcast_of(ws))
        await ws.send("found")

    client = await aiohttp_client(room_app(publish))
    async with client.ws_connect("/") as ws:
        await ws.receive_str(timeout=RECEIVE_TIMEOUT)
        await ws.send_str("x")
        assert await ws.receive_str(timeout=RECEIVE_TIMEOUT) == "found"
    app = client.server.app
    assert app is not None
    assert found == [broadcast_of(app)]
    assert isinstance(found[0], aioendpoints.Broadcast)


async def test_excluding_a_non_member_from_a_redis_history_group_keeps_nothing(
    redis_url: str, aiohttp_client: Any
) -> None:
    """A connection that is not a member, excluded from a publish to a Redis history group
    that has no member here, leaves nothing behind (its message never comes back here)."""
    routes = WebSocketRoutes()

    @routes.websocket_route("/")
    async def outsider(ws: WebSocket) -> None:
        await ws.accept()
        async for text in ws:
            await ws.publish(f"room:{text}", "hello", exclude=ws)
            await ws.send("published")

    app = web.Application()
    aioendpoints.setup(app, broadcast=redis_url, history=aioendpoints.History(size=10, ttl=60))
    app.add_routes(routes)
    client = await aiohttp_client(app)
    async with client.ws_connect("/") as ws:
        for n in range(3):
            await ws.send_str(f"{uuid.uuid4().hex}-{n}")
            assert await ws.receive_str(timeout=RECEIVE_TIMEOUT) == "published"
    hub = broadcast_of(app)
    assert (hub._exclusions, hub._excluded_at) == ({}, {})
