"""The admin API: snapshots of connections, and acting on a user's connections everywhere."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

import aioendpoints

from .admin_app import make_app
from .broadcast.processes import free_port, serve
from .helpers import eventually

RECEIVE_TIMEOUT = 10.0


async def test_connections_lists_what_each_connection_is_doing(aiohttp_client: Any) -> None:
    """Each snapshot has the id, route, path, peer, user, groups, times and counts."""
    app = make_app(metrics=True)
    client = await aiohttp_client(app)
    before = time.time()
    ws = await client.ws_connect("/ws?user=ada")
    await ws.send_str("héllo")
    assert await ws.receive_str(timeout=RECEIVE_TIMEOUT) == "héllo"
    async with client.get("/connections") as response:
        (info,) = await response.json()
    (websocket,) = app[aioendpoints.CONNECTIONS_KEY]
    assert info["id"] == websocket.id
    assert (info["route"], info["path"], info["user"], info["groups"]) == ("/ws", "/ws", "ada", [])
    assert info["peer"].startswith("127.0.0.1:")
    assert before <= info["opened_at"] <= time.time()
    counts = [info[name] for name in ("messages_received", "bytes_received")]
    assert counts == [1, 6]
    assert [info["messages_sent"], info["bytes_sent"], info["send_buffer"]] == [1, 6, 0]
    await ws.close()
    await eventually(lambda: not aioendpoints.connections(app))


async def test_without_metrics_the_counts_are_none(aiohttp_client: Any) -> None:
    """Messages are counted only with metrics on; the snapshot says so with None."""
    app = make_app()
    client = await aiohttp_client(app)
    ws = await client.ws_connect("/ws?user=ada")
    await eventually(lambda: aioendpoints.connections(app))
    (info,) = aioendpoints.connections(app)
    assert info.messages_received is info.bytes_sent is None
    await ws.close()


async def test_send_to_user_and_disconnect_in_one_process(aiohttp_client: Any) -> None:
    """Every connection of the user gets the message, then the close; others are untouched."""
    app = make_app()
    client = await aiohttp_client(app)
    ada = [await client.ws_connect("/ws?user=ada") for _ in range(2)]
    bob = await client.ws_connect("/ws?user=bob")
    await eventually(lambda: len(aioendpoints.connections(app)) == 3)
    assert await aioendpoints.send_to_user(app, "ada", {"notice": "hi"}) == 2
    for ws in ada:
        assert await ws.receive_json(timeout=RECEIVE_TIMEOUT) == {"notice": "hi"}
    assert await aioendpoints.send_to_user(app, "ada", b"\x01\x02") == 2
    for ws in ada:
        assert await ws.receive_bytes(timeout=RECEIVE_TIMEOUT) == b"\x01\x02"
    assert await aioendpoints.disconnect(app, user="ada", code=4000, reason="bye") == 2
    for ws in ada:
        message = await ws.receive(timeout=RECEIVE_TIMEOUT)
        assert (message.type, message.data, message.extra) == (aiohttp.WSMsgType.CLOSE, 4000, "bye")
    assert await aioendpoints.send_to_user(app, "nobody", "hello") == 0
    # Bob was not touched: the first thing he gets is his own echo.
    await bob.send_str("still here")
    assert await bob.receive_str(timeout=RECEIVE_TIMEOUT) == "still here"
    await bob.close()


async def test_bad_arguments_are_refused() -> None:
    """A missing user or a close code that cannot be sent is a clear error."""
    app = make_app()
    with pytest.raises(TypeError, match="user must be a non-empty str"):
        await aioendpoints.send_to_user(app, "", "hi")
    with pytest.raises(ValueError, match="close code 1006"):
        await aioendpoints.disconnect(app, user="ada", code=1006)


# Across processes ----------------------------------------------------------------------


def admin_server(port: int) -> list[str]:
    """``python -m aiohttp.web`` serving the admin test app on ``port``."""
    import sys

    return [
        sys.executable, "-m", "aiohttp.web", "-H", "127.0.0.1", "-P", str(port),
        "tests.admin_app:init_app",
    ]  # fmt: skip


@pytest.fixture
async def two_processes(redis_url: str) -> AsyncIterator[tuple[str, str]]:
    """Two server processes sharing the test Redis."""
    first, second = free_port(), free_port()
    async with (
        serve(admin_server(first), redis_url, first) as one,
        serve(admin_server(second), redis_url, second) as two,
    ):
        yield one, two


@pytest.mark.slow
async def test_send_to_user_and_disconnect_reach_every_process(
    two_processes: tuple[str, str],
) -> None:
    """A user's connections on both processes get the message and the close; others do not."""
    one, two = two_processes
    user, other = f"ada-{uuid.uuid4().hex}", f"bob-{uuid.uuid4().hex}"
    async with aiohttp.ClientSession() as session:
        here = [await session.ws_connect(f"{one}/ws?user={user}") for _ in range(2)]
        there = await session.ws_connect(f"{two}/ws?user={user}")
        bystander = await session.ws_connect(f"{two}/ws?user={other}")
        async with session.post(f"{one}/send?user={user}", data="hello from one") as response:
            assert await response.json() == {"reached": 2}
        for ws in [*here, there]:
            assert await ws.receive_str(timeout=RECEIVE_TIMEOUT) == "hello from one"

        async with session.post(f"{two}/disconnect?user={user}&code=4000&reason=bye") as response:
            assert await response.json() == {"reached": 1}
        for ws in [*here, there]:
            message = await ws.receive(timeout=RECEIVE_TIMEOUT)
            assert (message.type, message.data, message.extra) == (
                aiohttp.WSMsgType.CLOSE,
                4000,
                "bye",
            )
        # The bystander was not touched: the first thing it gets is its own echo.
        await bystander.send_str("still here")
        assert await bystander.receive_str(timeout=RECEIVE_TIMEOUT) == "still here"
        await bystander.close()
        await asyncio.gather(*(ws.close() for ws in [*here, there]))
