"""Presence: who is in a group across processes, its events, and dead processes dropped."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from typing import Any

import aiohttp
import pytest
from aiohttp import web

import aioendpoints
from aioendpoints import WebSocket, WebSocketRoutes
from tests.redis_server import RedisServer

from .chat_app import make_app
from .conftest import RECEIVE_TIMEOUT, ChatServers, receive_json
from .processes import aiohttp_web, free_port, serve


async def join(ws: aiohttp.ClientWebSocketResponse, group: str, **options: Any) -> None:
    """Join ``group`` with the given join() options."""
    await ws.send_json({"join": group, **options})
    assert (await receive_json(ws))["joined"] == group


async def connect(client: Any) -> aiohttp.ClientWebSocketResponse:
    """A chat client of ``client``'s app."""
    ws = await client.ws_connect("/chat")
    assert "pid" in await receive_json(ws)
    return ws


async def presence_until(app: Any, group: str, count: int) -> dict[str, Any]:
    """The group's presence once it lists ``count`` members; fails after RECEIVE_TIMEOUT."""
    for _ in range(int(RECEIVE_TIMEOUT / 0.05)):
        listed = await aioendpoints.presence(app, group)
        if len(listed) == count:
            return listed
        await asyncio.sleep(0.05)
    raise AssertionError(f"{group} lists {await aioendpoints.presence(app, group)}")


async def test_presence_lists_members_of_every_process(chat: ChatServers, group: str) -> None:
    """Members with presence, in either process, are listed with their data by both."""
    ann = await connect(chat.members)
    bob = await connect(chat.publisher)
    plain = await connect(chat.members)
    await join(ann, group, presence={"name": "ann"})
    await join(bob, group, presence={"name": "bob"})
    await join(plain, group)
    for app in (chat.members.app, chat.publisher.app):
        listed = await aioendpoints.presence(app, group)
        assert sorted(data["name"] for data in listed.values()) == ["ann", "bob"]
    await ann.send_json({"leave": group})
    assert await receive_json(ann) == {"left": group}
    assert list((await presence_until(chat.publisher.app, group, 1)).values()) == [{"name": "bob"}]
    await bob.close()
    assert await presence_until(chat.members.app, group, 0) == {}


async def test_presence_events_tell_of_joins_and_leaves(chat: ChatServers, group: str) -> None:
    """A member that asked for events gets a JSON frame for each join and leave, from
    members of any process."""
    watcher = await connect(chat.members)
    await join(watcher, group, presence_events=True)
    other = await connect(chat.publisher)
    await join(other, group, presence={"name": "eve"})
    joined = await receive_json(watcher)
    assert joined["group"] == group
    assert joined["presence"] == "join"
    assert joined["data"] == {"name": "eve"}
    assert list(await aioendpoints.presence(chat.members.app, group)) == [joined["connection"]]
    await other.close()
    assert await receive_json(watcher) == {
        "group": group,
        "presence": "leave",
        "connection": joined["connection"],
    }


async def test_presence_must_be_a_mapping(aiohttp_client: Any, group: str) -> None:
    """Presence that is not a mapping is refused with TypeError; the member is not listed."""
    routes = WebSocketRoutes()

    @routes.websocket_route("/ws")
    async def view(ws: WebSocket) -> None:
        await ws.accept()
        try:
            await ws.join(group, presence=["not", "a", "mapping"])  # type: ignore[arg-type]
        except TypeError as error:
            await ws.send(str(error))

    app = web.Application()
    aioendpoints.setup(app)
    app.add_routes(routes)
    client = await aiohttp_client(app)
    ws = await client.ws_connect("/ws")
    assert "presence must be a mapping" in await ws.receive_str(timeout=RECEIVE_TIMEOUT)
    assert await aioendpoints.presence(app, group) == {}
    assert aioendpoints.group_members(app, group) == frozenset()


async def test_a_killed_process_is_dropped_within_the_presence_ttl(
    redis_url: str, aiohttp_client: Any, group: str
) -> None:
    """A server process killed with SIGKILL (so it never leaves) drops out of presence
    once its entries expire: ``presence_ttl`` seconds (1 s here, 30 s by default)."""
    observer = make_app(redis_url)
    await aiohttp_client(observer)
    port = free_port()
    async with (
        serve(aiohttp_web(port), redis_url, port, presence_ttl="1") as base,
        aiohttp.ClientSession() as session,
    ):
        member = await session.ws_connect(f"{base}/chat")
        pid = (await receive_json(member))["pid"]
        await join(member, group, presence={"name": "doomed"})
        assert list((await aioendpoints.presence(observer, group)).values()) == [{"name": "doomed"}]
        os.kill(pid, signal.SIGKILL)
        assert await presence_until(observer, group, 0) == {}


# Stopping --------------------------------------------------------------------------------

#: Groups a process is listed in, in the stop tests.
LISTED_GROUPS = 100


async def listed_store(url: str, process: str, **options: Any) -> Any:
    """A started RedisPresence of ``process``, listed in LISTED_GROUPS groups."""
    from redis.asyncio import Redis

    from aioendpoints.broadcast.redis_presence import RedisPresence

    store = RedisPresence(Redis.from_url(url, **options), b"aioendpoints:0:", process)
    await store.start()
    for n in range(LISTED_GROUPS):
        await store.add(f"stop:{process}:{n}", f"{process}-1", b'{"n":1}')
    return store


async def test_stop_takes_the_process_out_of_every_group(redis_url: str) -> None:
    """A stopping process removes its entries of every group, and nobody else's."""
    staying = await listed_store(redis_url, "staying")
    leaving = await listed_store(redis_url, "leaving")
    for n in range(LISTED_GROUPS):  # the staying process is in the leaving one's groups too
        await staying.add(f"stop:leaving:{n}", "staying-2", b'{"n":2}')
    await leaving.stop()
    client = leaving._client
    for n in range(LISTED_GROUPS):
        assert await staying.members(f"stop:leaving:{n}") == {"staying-2": b'{"n":2}'}
        processes, own = leaving._keys(f"stop:leaving:{n}")
        assert await client.exists(own) == 0
        assert await client.zscore(processes, "leaving") is None
    await staying.stop()
    await client.aclose()
    await staying._client.aclose()


async def test_stop_with_a_frozen_redis_waits_one_command_timeout(
    own_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """With Redis frozen, stop() gives up after one command timeout for all its groups
    (not one per group: 100 groups of 0.5 s each would be minutes) and says so."""
    caplog.set_level(logging.WARNING, "aioendpoints.broadcast")
    store = await listed_store(own_redis.url, "frozen", socket_timeout=0.5)
    own_redis.pause()
    try:
        async with asyncio.timeout(30):  # one timeout, and redis-py's retries of it
            await store.stop()
    finally:
        own_redis.resume()
    assert f"presence out of {LISTED_GROUPS} group(s)" in caplog.text
    await store._client.aclose()
