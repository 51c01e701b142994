"""A message published as soon as join() has returned reaches every member, exactly once.

Many members join over real WebSocket connections; the moment the last one is told that
its join() returned, a message is published, then another: each member must get both, in
order, and nothing else. Over both backends, with and without history, with and without
earlier messages in the group, published from the members' process or from another.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from yarl import URL

import aioendpoints
from aioendpoints.broadcast import broadcast_of
from tests.redis_server import RedisServer
from tests.resources import raise_open_file_limit

from .chat_app import make_app
from .conftest import HISTORY, receive_json
from .processes import aiohttp_web, free_port, serve

MEMBERS = 200
#: Seconds the whole scenario may take before the test fails rather than hangs.
SCENARIO_TIMEOUT = 90.0


async def join_all(
    session: aiohttp.ClientSession, url: URL | str, group: str, count: int
) -> list[aiohttp.ClientWebSocketResponse]:
    """``count`` chat clients, each told by the server that its join() returned."""
    gate = asyncio.Semaphore(50)

    async def join() -> aiohttp.ClientWebSocketResponse:
        async with gate:
            ws = await session.ws_connect(url)
            assert "pid" in await receive_json(ws)
            await ws.send_json({"join": group})
            answer = await receive_json(ws)
            assert answer["joined"] == group, answer  # no replay: joined without since
            return ws

    return await asyncio.gather(*(join() for _ in range(count)))


async def receive_two(ws: aiohttp.ClientWebSocketResponse, history: bool) -> list[Any]:
    """The next two messages, unwrapped from their history frames, with their offsets."""
    got = []
    for _ in range(2):
        frame = await receive_json(ws)
        got.append((frame["offset"], frame["data"]) if history else (None, frame))
    return got


async def check_every_member_gets_both(
    members: list[aiohttp.ClientWebSocketResponse],
    history: bool,
    publish: Any,
) -> None:
    """Publish two messages at once; each member must get exactly those, in order."""
    first = await publish({"n": 1})
    second = await publish({"n": 2})
    results = await asyncio.gather(*(receive_two(ws, history) for ws in members))
    offsets = [None, None]
    if history:
        offsets = [first.offset, second.offset]
        assert second.offset == first.offset + 1
    expected = [(offsets[0], {"n": 1}), (offsets[1], {"n": 2})]
    missing = sum(result != expected for result in results)
    assert missing == 0, f"{missing} of {len(members)} members did not get exactly both"
    # Nothing more for anyone (no duplicate): a third message is the next each one gets.
    third = await publish({"n": 3})
    for ws in members:
        frame = await receive_json(ws)
        assert (frame["data"] if history else frame) == {"n": 3}
        if history:
            assert frame["offset"] == third.offset


@pytest.mark.parametrize(
    ("backend", "publisher"),
    [("memory", "same-app"), ("redis", "same-app"), ("redis", "other-app")],
)
@pytest.mark.parametrize("earlier", [False, True], ids=["new-group", "earlier-messages"])
@pytest.mark.parametrize("history", [False, True], ids=["plain", "history"])
async def test_a_publish_right_after_the_joins_reaches_every_member(
    request: pytest.FixtureRequest,
    aiohttp_client: Any,
    group: str,
    history: bool,
    earlier: bool,
    backend: str,
    publisher: str,
) -> None:
    """200 members join; a publish made as soon as every join() returned reaches each of
    them, exactly once and in order, as does the next one."""
    broadcast_url = "memory://" if backend == "memory" else request.getfixturevalue("redis_url")
    raise_open_file_limit(4 * MEMBERS + 256)
    kept = HISTORY if history else None
    members_client = await aiohttp_client(make_app(broadcast_url, kept))
    publisher_app = members_client.app
    if publisher == "other-app":
        publisher_app = (await aiohttp_client(make_app(broadcast_url, kept))).app
    if earlier:
        await aioendpoints.publish(publisher_app, group, {"n": 0})

    async def publish(message: Any) -> Any:
        return await aioendpoints.publish(publisher_app, group, message)

    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session,
        asyncio.timeout(SCENARIO_TIMEOUT),
    ):
        members = await join_all(session, members_client.make_url("/chat"), group, MEMBERS)
        await check_every_member_gets_both(members, history, publish)
        await asyncio.gather(*(ws.close() for ws in members))


@pytest.mark.parametrize("publisher", ["members-process", "other-process"])
@pytest.mark.parametrize("history", [False, True], ids=["plain", "history"])
async def test_a_publish_right_after_the_joins_reaches_members_of_another_process(
    redis_url: str, aiohttp_client: Any, group: str, history: bool, publisher: str
) -> None:
    """Members of a ``python -m aiohttp.web`` process get a message published at once
    after their joins returned, from that process or from this one through Redis."""
    raise_open_file_limit(4 * MEMBERS + 256)
    port = free_port()
    kept = HISTORY if history else None
    this_app = (await aiohttp_client(make_app(redis_url, kept))).app
    async with (
        serve(aiohttp_web(port), redis_url, port, history="100,600" if history else "") as base,
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session,
        asyncio.timeout(SCENARIO_TIMEOUT),
    ):

        async def publish(message: Any) -> Any:
            if publisher == "other-process":
                return await aioendpoints.publish(this_app, group, message)
            async with session.post(f"{base}/publish/{group}", json=message) as response:
                assert response.status == 204
            if not history:
                return None
            # The offset the members' process gave it: the history's latest.
            kept_messages = await aioendpoints.history(this_app, group)
            return kept_messages[-1][0]

        members = await join_all(session, f"{base}/chat", group, MEMBERS)
        await check_every_member_gets_both(members, history, publish)
        await asyncio.gather(*(ws.close() for ws in members))


@pytest.mark.parametrize("history", [False, True], ids=["plain", "history"])
async def test_a_publish_once_the_group_counts_every_member_reaches_them_all(
    broadcast_url: str, aiohttp_client: Any, group: str, history: bool
) -> None:
    """200 members connect and join at once; a publish made the moment group_members()
    counts them all (not waiting for their answers) reaches every one of them."""
    raise_open_file_limit(4 * MEMBERS + 256)
    client = await aiohttp_client(make_app(broadcast_url, HISTORY if history else None))
    url = client.make_url("/chat")

    async def join(session: aiohttp.ClientSession) -> aiohttp.ClientWebSocketResponse:
        ws = await session.ws_connect(url)
        assert "pid" in await receive_json(ws)
        await ws.send_json({"join": group})
        return ws

    async def receive(ws: aiohttp.ClientWebSocketResponse) -> Any:
        answer = await receive_json(ws)
        assert answer["joined"] == group, answer
        frame = await receive_json(ws)
        return frame["data"] if history else frame

    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session,
        asyncio.timeout(SCENARIO_TIMEOUT),
    ):
        joining = asyncio.gather(*(join(session) for _ in range(MEMBERS)))
        for _ in range(30_000):  # every millisecond, for at least 30 s
            if len(aioendpoints.group_members(client.app, group)) == MEMBERS:
                break
            await asyncio.sleep(0.001)
        else:
            pytest.fail("the group never counted every member")
        await aioendpoints.publish(client.app, group, {"n": 1})
        members = await joining
        got = await asyncio.gather(*(receive(ws) for ws in members))
        assert got == [{"n": 1}] * MEMBERS
        await asyncio.gather(*(ws.close() for ws in members))


async def test_a_member_counts_in_the_group_once_its_join_returned(
    own_redis: RedisServer, aiohttp_client: Any, group: str
) -> None:
    """While a join to a group with history waits for Redis, group_members() leaves the
    member out: a publish made when it counts every member must reach them all."""
    client = await aiohttp_client(make_app(own_redis.url, HISTORY))
    hub = broadcast_of(client.app)
    ws = await client.ws_connect("/chat")
    assert "pid" in await receive_json(ws)
    own_redis.pause()
    try:
        await ws.send_json({"join": group})
        for _ in range(1000):  # until the join waits for Redis, at most about 10 s
            if group in hub._joining:
                break
            await asyncio.sleep(0.01)
        assert group in hub._joining
        assert aioendpoints.group_members(client.app, group) == frozenset()
    finally:
        own_redis.resume()
    answer = await receive_json(ws)
    assert answer["joined"] == group
    assert len(aioendpoints.group_members(client.app, group)) == 1
    await ws.close()
