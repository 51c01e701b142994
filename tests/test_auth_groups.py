"""Per-group permission: who may join, and publish to, which group."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp import WSMsgType, web

import aioendpoints
from aioendpoints import WebSocket, WebSocketEndpoint, WebSocketRoutes
from aioendpoints.auth import GroupPermissionDenied
from tests.conftest import ModeClient
from tests.server_modes import assert_quiet_ending


def by_user(request: web.Request) -> str | None:
    return request.query.get("user")


def staff_only(principal: str, group: str) -> bool:
    """Anyone may be in ``lobby``; only ``root`` in ``staff``."""
    return group == "lobby" or principal == "root"


def group_app(**route_options: Any) -> web.Application:
    """/join/{group} joins and reports; /say/{group} publishes without joining."""
    routes = WebSocketRoutes()

    @routes.websocket_route("/join/{group}", authenticate=by_user, **route_options)
    async def join(ws: WebSocket, group: str) -> None:
        await ws.accept()
        try:
            await ws.join(group)
        except GroupPermissionDenied as denial:
            await ws.send(f"refused {denial.group}")
            return
        await ws.send(f"joined {group}")
        await ws.receive()

    @routes.websocket_route("/say/{group}", authenticate=by_user, **route_options)
    async def say(ws: WebSocket, group: str) -> None:
        await ws.accept()
        await ws.publish(group, f"{ws.principal} says hi")
        await ws.send("published")
        await ws.receive()

    app = web.Application()
    aioendpoints.setup(app)
    app.add_routes(routes)
    return app


async def test_a_member_is_refused_a_group_while_others_join(aiohttp_client: Any) -> None:
    """root joins staff; alice, in the same process at the same time, gets the refusal."""
    client = await aiohttp_client(group_app(group_permission=staff_only))
    root = await client.ws_connect("/join/staff?user=root")
    alice = await client.ws_connect("/join/staff?user=alice")
    alice_lobby = await client.ws_connect("/join/lobby?user=alice")
    assert await root.receive_str() == "joined staff"
    assert await alice.receive_str() == "refused staff"
    assert await alice_lobby.receive_str() == "joined lobby"
    members = aioendpoints.group_members(client.app, "staff")
    assert [member.principal for member in members] == ["root"]
    for ws in (root, alice, alice_lobby):
        await ws.close()


async def test_unhandled_refusal_closes_with_1008(
    each_mode_client: ModeClient, caplog: pytest.LogCaptureFixture
) -> None:
    """An endpoint that does not catch the refusal is closed with 1008, without a traceback."""
    routes = WebSocketRoutes()

    @routes.websocket_route("/staff", authenticate=by_user, group_permission=staff_only)
    class Staff(WebSocketEndpoint):
        groups = ("staff",)

    app = web.Application()
    aioendpoints.setup(app)
    app.add_routes(routes)
    client = await each_mode_client(app)
    ws = await client.ws_connect("/staff?user=alice")
    message = await ws.receive()
    assert (message.type, message.data, message.extra) == (
        WSMsgType.CLOSE,
        1008,
        "Not allowed in this group",
    )
    assert_quiet_ending(caplog)
    assert aioendpoints.group_members(app, "staff") == frozenset()


async def test_publishing_to_a_refused_group_is_refused(each_mode_client: ModeClient) -> None:
    """Publishing from a socket passes the same check: nothing reaches the group's members."""
    client = await each_mode_client(group_app(group_permission=staff_only))
    root = await client.ws_connect("/join/staff?user=root")
    assert await root.receive_str() == "joined staff"
    alice = await client.ws_connect("/say/staff?user=alice")
    closing = await alice.receive()
    assert (closing.type, closing.data) == (WSMsgType.CLOSE, 1008)
    other_root = await client.ws_connect("/say/staff?user=root")
    assert await other_root.receive_str() == "published"
    # The first message root's member socket gets is root's own, not alice's.
    assert await root.receive_str() == "root says hi"
    for ws in (root, alice, other_root):
        await ws.close()


async def test_app_wide_permission_and_an_async_one(aiohttp_client: Any) -> None:
    """setup(group_permission=...) applies to routes without their own; it may be async."""
    asked: list[tuple[str, str]] = []

    async def lobby_only(principal: str, group: str) -> bool:
        asked.append((principal, group))
        await asyncio.sleep(0)
        return group == "lobby"

    routes = WebSocketRoutes()

    @routes.websocket_route("/join/{group}", authenticate=by_user)
    async def join(ws: WebSocket, group: str) -> None:
        await ws.accept()
        try:
            await ws.join(group)
        except GroupPermissionDenied:
            await ws.send("refused")
        else:
            await ws.send("joined")

    app = web.Application()
    aioendpoints.setup(app, group_permission=lobby_only)
    app.add_routes(routes)
    client = await aiohttp_client(app)
    for group, answer in (("lobby", "joined"), ("staff", "refused")):
        async with client.ws_connect(f"/join/{group}?user=bob") as ws:
            assert await ws.receive_str() == answer
    assert asked == [("bob", "lobby"), ("bob", "staff")]


async def test_close_codes_option_maps_the_refusal(aiohttp_client: Any) -> None:
    """A route's close_codes can give the refusal its own close code."""
    client = await aiohttp_client(
        group_app(
            group_permission=staff_only, close_codes={GroupPermissionDenied: (4403, "staff only")}
        )
    )
    ws = await client.ws_connect("/say/staff?user=alice")
    closing = await ws.receive()
    assert (closing.type, closing.data, closing.extra) == (WSMsgType.CLOSE, 4403, "staff only")
