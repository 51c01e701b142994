"""Recovery under stress: joins racing publishes, Redis restarts and outages, many members,
other processes, and random interleavings (hypothesis)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import aioendpoints
from aioendpoints import BroadcastUnavailable, History, Position
from tests.redis_server import RedisServer
from tests.resources import raise_open_file_limit

from .chat_app import make_app
from .conftest import HISTORY, HistoryChat, publish_until_received, receive_json
from .processes import aiohttp_web, free_port, serve

#: Seconds a whole scenario may take before the test fails rather than hangs.
SCENARIO_TIMEOUT = 90.0


async def test_rejoins_while_another_process_publishes_lose_and_double_nothing(
    history_chat: HistoryChat, group: str
) -> None:
    """A member that keeps leaving and rejoining from its position while messages are
    published non-stop gets every message exactly once, in order."""
    count = 400
    member = await history_chat.connect()
    start = Position.parse((await history_chat.join(member, group))["position"])

    async def publish_all() -> None:
        for n in range(count):
            await aioendpoints.publish(history_chat.publisher.app, group, str(n))
            if n % 5 == 0:
                await asyncio.sleep(0.002)  # spread publishing over the member's rejoins

    received: list[int] = []
    offsets: list[int] = []
    rejoins = 0
    async with asyncio.timeout(SCENARIO_TIMEOUT):
        publishing = asyncio.ensure_future(publish_all())
        while len(received) < count:
            for _ in range(1 + rejoins % 7):  # read a few, then drop the connection
                if len(received) == count:
                    break
                frame = await receive_json(member)
                received.append(int(frame["data"]))
                offsets.append(frame["offset"])
            await member.close()
            rejoins += 1
            since = f"{start.epoch}:{offsets[-1] if offsets else start.offset}"
            member = await history_chat.connect()
            joined = await history_chat.join(member, group, since=since)
            assert joined["recovered"] is True
            for frame in joined.get("replayed", ()):
                received.append(int(frame["data"]))
                offsets.append(frame["offset"])
        await publishing
    assert received[:count] == list(range(count)), (offsets, received)
    assert offsets[:count] == list(range(start.offset + 1, start.offset + count + 1))
    assert len(received) == count
    await member.close()


async def test_two_server_processes_share_one_numbered_history(redis_url: str, group: str) -> None:
    """Messages published through one process are replayed by another, offsets shared."""
    port_a, port_b = free_port(), free_port()
    async with (
        serve(aiohttp_web(port_a), redis_url, port_a, history="100,600") as base_a,
        serve(aiohttp_web(port_b), redis_url, port_b, history="100,600") as base_b,
        aiohttp.ClientSession() as session,
    ):
        member = await session.ws_connect(f"{base_a}/chat")
        await receive_json(member)
        await member.send_json({"join": group})
        start = Position.parse((await receive_json(member))["position"])
        await member.close()
        async with session.post(f"{base_b}/publish/{group}?count=5") as response:
            assert response.status == 204
        async with session.post(f"{base_a}/publish/{group}?count=2") as response:
            assert response.status == 204
        member = await session.ws_connect(f"{base_a}/chat")
        await receive_json(member)
        await member.send_json({"join": group, "since": str(start)})
        frames = [await receive_json(member) for _ in range(7)]
        assert [frame["data"] for frame in frames] == [{"seq": n} for n in [0, 1, 2, 3, 4, 0, 1]]
        assert [frame["offset"] for frame in frames] == list(
            range(start.offset + 1, start.offset + 8)
        )
        answer = await receive_json(member)
        assert answer["recovered"] is True
        assert answer["position"] == f"{start.epoch}:{start.offset + 7}"
        await member.close()


# Redis going away ------------------------------------------------------------------------


async def test_redis_restart_starts_a_new_epoch_and_live_delivery_resumes(
    own_redis: RedisServer, aiohttp_client: Any, group: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis restarted empty: live messages flow again under a new epoch, and a member back
    with a position from the old one is told that it was not recovered."""
    caplog.set_level(logging.WARNING, "aioendpoints.broadcast")
    members = await aiohttp_client(make_app(own_redis.url, HISTORY))
    publisher_app = make_app(own_redis.url, HISTORY)
    chat = HistoryChat(members, await aiohttp_client(publisher_app))
    member = await chat.connect()
    await chat.join(member, group)
    await aioendpoints.publish(publisher_app, group, "before")
    before = await receive_json(member)

    own_redis.kill()
    await asyncio.sleep(0.3)
    own_redis.start()

    after = await publish_until_received(publisher_app, member, group, history=True)
    assert after["epoch"] != before["epoch"]
    assert after["offset"] >= 1
    other = await chat.connect()
    joined = await chat.join(other, group, since=f"{before['epoch']}:{before['offset']}")
    assert joined["recovered"] is False
    assert "replayed" not in joined
    assert Position.parse(joined["position"]).epoch == after["epoch"]
    assert "restored after a gap" in caplog.text


async def test_publish_to_a_history_group_while_redis_is_down_raises(
    own_redis: RedisServer, aiohttp_client: Any, group: str
) -> None:
    """Without Redis, publishing and reading history raise BroadcastUnavailable."""
    app = make_app(own_redis.url, HISTORY)
    await aiohttp_client(app)
    await aioendpoints.publish(app, group, "kept")
    own_redis.kill()
    with pytest.raises(BroadcastUnavailable, match="cannot publish"):
        await aioendpoints.publish(app, group, "lost")
    with pytest.raises(BroadcastUnavailable, match="cannot read"):
        await aioendpoints.history(app, group)


# Many members ----------------------------------------------------------------------------


@pytest.mark.slow
async def test_two_thousand_members_each_get_every_message_once_in_order(
    redis_url: str, aiohttp_client: Any, group: str
) -> None:
    """2,000 members of one history group on Redis each get 10 messages from another app."""
    members_count, messages = 2_000, 10
    raise_open_file_limit(4 * members_count + 256)
    chat = HistoryChat(
        await aiohttp_client(make_app(redis_url, HISTORY)),
        await aiohttp_client(make_app(redis_url, HISTORY)),
    )
    gate = asyncio.Semaphore(100)
    url = chat.members.make_url("/chat")

    async def join(session: aiohttp.ClientSession) -> tuple[Any, Position]:
        async with gate:
            ws = await session.ws_connect(url)
            await receive_json(ws)
            return ws, Position.parse((await chat.join(ws, group))["position"])

    async def receive_all(ws: aiohttp.ClientWebSocketResponse) -> list[tuple[int, str]]:
        got = [await receive_json(ws) for _ in range(messages)]
        await ws.close()
        return [(frame["offset"], frame["data"]) for frame in got]

    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session,
        asyncio.timeout(SCENARIO_TIMEOUT * 2),
    ):
        joined = await asyncio.gather(*(join(session) for _ in range(members_count)))
        latest = max(position.offset for _, position in joined)
        for n in range(messages):
            await aioendpoints.publish(chat.publisher.app, group, str(n))
        results = await asyncio.gather(*(receive_all(ws) for ws, _ in joined))
    expected = [(latest + 1 + n, str(n)) for n in range(messages)]
    assert all(result == expected for result in results)


# Random interleavings --------------------------------------------------------------------

operations = st.lists(
    st.one_of(
        st.tuples(st.just("publish"), st.integers(1, 6)),
        st.tuples(st.just("read"), st.integers(1, 6)),
        st.tuples(st.just("drop"), st.just(0)),
        st.tuples(st.just("rejoin"), st.just(0)),
    ),
    max_size=25,
)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=operations, size=st.sampled_from([4, 1000]))
async def test_random_publish_drop_rejoin_interleavings(
    broadcast_url: str, aiohttp_client: Any, steps: list[tuple[str, int]], size: int
) -> None:
    """Whatever the order of publishing, dropping and rejoining from the last position,
    a member sees each message once, in order, with no gap since its last unrecovered join;
    and a recovered join misses nothing."""
    group = f"room:{uuid.uuid4().hex}"
    history = History(size=size, ttl=600)
    members = await aiohttp_client(make_app(broadcast_url, history))
    chat = HistoryChat(members, members)
    member: aiohttp.ClientWebSocketResponse | None = await chat.connect()
    assert member is not None
    position = Position.parse((await chat.join(member, group))["position"])
    published: dict[int, str] = {}  # offset -> message
    next_offset = position.offset + 1  # the offset the member must see next
    sent = 0

    def check(frame: dict[str, Any]) -> None:
        nonlocal next_offset, position
        assert frame["epoch"] == position.epoch
        assert frame["offset"] == next_offset
        assert frame["data"] == published[next_offset]
        position = Position(position.epoch, next_offset)
        next_offset += 1

    async def rejoin() -> aiohttp.ClientWebSocketResponse:
        nonlocal next_offset
        ws = await chat.connect()
        joined = await chat.join(ws, group, since=str(position))
        latest = Position.parse(joined["position"])
        lost = latest.offset - position.offset
        # Recovered exactly when the history still holds every missed message.
        assert joined["recovered"] is (lost <= size)
        if not joined["recovered"]:
            assert "replayed" not in joined
            next_offset = latest.offset + 1
        for frame in joined.get("replayed", ()):
            check(frame)
        assert next_offset == latest.offset + 1
        return ws

    async with asyncio.timeout(SCENARIO_TIMEOUT):
        for operation, amount in steps:
            if operation == "publish":
                for _ in range(amount):
                    result = await aioendpoints.publish(members.app, group, str(sent))
                    assert result is not None
                    published[result.offset] = str(sent)
                    sent += 1
            elif operation == "read" and member is not None:
                for _ in range(min(amount, max(published, default=0) - next_offset + 1)):
                    check(await receive_json(member))
            elif operation == "drop" and member is not None:
                await member.close()
                member = None
            elif operation == "rejoin" and member is None:
                member = await rejoin()
        if member is None:
            member = await rejoin()
        while next_offset <= max(published, default=0):
            check(await receive_json(member))
        await member.close()
    assert next_offset == max(published, default=position.offset) + 1
