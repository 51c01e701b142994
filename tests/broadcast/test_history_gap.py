"""A lost pub/sub connection to a Redis that kept running: history groups lose nothing.

The process's subscription is cut (``CLIENT KILL TYPE pubsub``) while the streams and the
epochs stay in Redis; what is published meanwhile, from another connection or process,
reaches the members once the subscription is back, in order, none twice, before the
live messages.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest

import aioendpoints
from aioendpoints import Broadcast
from aioendpoints.broadcast import broadcast_of
from aioendpoints.broadcast.redis import RedisBackend
from tests.redis_server import RedisServer

from .chat_app import make_app
from .conftest import HISTORY, receive_json
from .processes import aiohttp_web, free_port, serve

MEMBERS = 3
#: Seconds a whole scenario may take before the test fails rather than hangs.
SCENARIO_TIMEOUT = 90.0

Publish = Callable[[str, Any], Awaitable[None]]


async def cut_subscriptions(url: str) -> int:
    """Close every pub/sub connection of Redis at ``url``; how many there were."""
    from redis.asyncio import Redis

    async with Redis.from_url(url) as redis:
        return int(await redis.client_kill_filter(_type="pubsub"))


async def flush(url: str) -> None:
    """Empty Redis: every history is lost, as in a restart without persistence."""
    from redis.asyncio import Redis

    async with Redis.from_url(url) as redis:
        await redis.flushall()


async def wait_for_log(caplog: pytest.LogCaptureFixture, text: str, count: int = 1) -> None:
    """Wait until ``text`` was logged ``count`` times; fail after about 30 s."""
    for _ in range(1500):
        if caplog.text.count(text) >= count:
            return
        await asyncio.sleep(0.02)
    pytest.fail(f"{text!r} was not logged {count} time(s)")


def members_app(url: str, reconnect_delay: float) -> Any:
    """The chat app whose backend waits ``reconnect_delay`` before resubscribing."""
    backend = RedisBackend(url, reconnect_delay=reconnect_delay)
    return make_app(Broadcast(backend), HISTORY)


@asynccontextmanager
async def publisher_of(
    kind: str, url: str, aiohttp_client: Any, session: aiohttp.ClientSession
) -> AsyncIterator[Publish]:
    """Publishing through another app of this process, or through another process."""
    if kind == "other-app":
        app = (await aiohttp_client(make_app(url, HISTORY))).app

        async def publish_here(group: str, message: Any) -> None:
            await aioendpoints.publish(app, group, message)

        yield publish_here
        return
    port = free_port()
    async with serve(aiohttp_web(port), url, port, history="100,600") as base:

        async def publish_there(group: str, message: Any) -> None:
            async with session.post(f"{base}/publish/{group}", json=message) as response:
                assert response.status == 204

        yield publish_there


async def join(client: Any, groups: list[str]) -> aiohttp.ClientWebSocketResponse:
    """A chat client that has joined ``groups`` (no replay: joined without since)."""
    ws = await client.ws_connect("/chat")
    assert "pid" in await receive_json(ws)
    for group in groups:
        await ws.send_json({"join": group})
        assert (await receive_json(ws))["joined"] == group
    return ws


async def frames_by_group(
    ws: aiohttp.ClientWebSocketResponse, count: int
) -> dict[str, list[tuple[str, int, Any]]]:
    """The next ``count`` frames, as ``(epoch, offset, data)`` per group."""
    by_group: dict[str, list[tuple[str, int, Any]]] = {}
    for _ in range(count):
        frame = await receive_json(ws)
        by_group.setdefault(frame["group"], []).append(
            (frame["epoch"], frame["offset"], frame["data"])
        )
    return by_group


@pytest.mark.parametrize("publisher", ["other-app", "other-process"])
async def test_what_was_published_while_the_subscription_was_lost_is_delivered(
    own_redis: RedisServer,
    aiohttp_client: Any,
    caplog: pytest.LogCaptureFixture,
    publisher: str,
) -> None:
    """Messages published while the subscription reconnects reach every member of every
    history group once it is back, in order and before the live ones, none twice."""
    caplog.set_level(logging.WARNING, "aioendpoints.broadcast")
    groups = ["room:a", "room:b"]
    # A second before resubscribing: the gap's messages surely fall in it.
    client = await aiohttp_client(members_app(own_redis.url, reconnect_delay=1.0))
    async with (
        aiohttp.ClientSession() as session,
        publisher_of(publisher, own_redis.url, aiohttp_client, session) as publish,
        asyncio.timeout(SCENARIO_TIMEOUT),
    ):
        members = [await join(client, groups) for _ in range(MEMBERS)]
        for group in groups:
            await publish(group, "before")
        before = [await frames_by_group(ws, len(groups)) for ws in members]
        assert all(frames == before[0] for frames in before)

        assert await cut_subscriptions(own_redis.url) >= 1
        for n in range(10):
            for group in groups:
                await publish(group, f"gap {n}")
        # The publishing app, if in this process, is back first: it waits 0.1 s.
        await wait_for_log(caplog, "restored after a gap", 2 if publisher == "other-app" else 1)
        for n in range(5):
            for group in groups:
                await publish(group, f"live {n}")

        texts = [*(f"gap {n}" for n in range(10)), *(f"live {n}" for n in range(5))]
        expected = {}
        for group in groups:
            epoch, offset, _ = before[0][group][0]
            expected[group] = [(epoch, offset + 1 + n, text) for n, text in enumerate(texts)]
        for ws in members:
            assert await frames_by_group(ws, len(texts) * len(groups)) == expected
        await publish("room:a", "last")
        for ws in members:  # nothing twice: the next frame is the last one published
            assert (await receive_json(ws))["data"] == "last"
            await ws.close()
    assert "Error" not in caplog.text


async def test_messages_published_across_the_cut_arrive_once_each_in_order(
    own_redis: RedisServer, aiohttp_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Publishing never stops while the subscription is cut and comes back: each member
    gets every message exactly once, in order, whether it came live or read back."""
    caplog.set_level(logging.WARNING, "aioendpoints.broadcast")
    count = 200
    client = await aiohttp_client(members_app(own_redis.url, reconnect_delay=0.1))
    publisher_app = (await aiohttp_client(make_app(own_redis.url, HISTORY))).app
    async with asyncio.timeout(SCENARIO_TIMEOUT):
        members = [await join(client, ["room:a"]) for _ in range(MEMBERS)]
        first = await aioendpoints.publish(publisher_app, "room:a", "0")
        assert first is not None

        async def publish_all() -> None:
            for n in range(1, count):
                await aioendpoints.publish(publisher_app, "room:a", str(n))
                if n % 20 == 0:
                    await cut_subscriptions(own_redis.url)
                await asyncio.sleep(0.005)

        publishing = asyncio.ensure_future(publish_all())
        results = [await frames_by_group(ws, count) for ws in members]
        await publishing
        expected = [(first.epoch, first.offset + n, str(n)) for n in range(count)]
        for got in results:
            assert got == {"room:a": expected}
        await aioendpoints.publish(publisher_app, "room:a", "last")
        for ws in members:
            assert (await receive_json(ws))["data"] == "last"
            await ws.close()
    assert caplog.text.count("restored after a gap") >= 2


async def test_after_a_lost_history_the_gap_is_not_replayed(
    own_redis: RedisServer, aiohttp_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """When Redis lost the history meanwhile (a new epoch), nothing is read back: the
    members go on with the live messages, under the new epoch."""
    caplog.set_level(logging.WARNING, "aioendpoints.broadcast")
    client = await aiohttp_client(members_app(own_redis.url, reconnect_delay=1.0))
    publisher_app = (await aiohttp_client(make_app(own_redis.url, HISTORY))).app
    async with asyncio.timeout(SCENARIO_TIMEOUT):
        member = await join(client, ["room:a"])
        await aioendpoints.publish(publisher_app, "room:a", "before")
        before = await receive_json(member)
        await flush(own_redis.url)
        assert await cut_subscriptions(own_redis.url) >= 1
        for n in range(3):
            await aioendpoints.publish(publisher_app, "room:a", f"gap {n}")
        await wait_for_log(caplog, "restored after a gap", 2)  # both apps
        live = await aioendpoints.publish(publisher_app, "room:a", "live")
        assert live is not None
        frame = await receive_json(member)
        assert (frame["epoch"], frame["offset"], frame["data"]) == (live.epoch, 4, "live")
        assert frame["epoch"] != before["epoch"]
        await member.close()


async def test_a_publisher_that_excluded_itself_during_the_gap_does_not_get_it(
    own_redis: RedisServer, aiohttp_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A member that publishes with exclude_self while the subscription is lost does not
    get its message when it is read back; the other members do."""
    caplog.set_level(logging.WARNING, "aioendpoints.broadcast")
    client = await aiohttp_client(members_app(own_redis.url, reconnect_delay=1.0))
    async with asyncio.timeout(SCENARIO_TIMEOUT):
        speaker, listener = [await join(client, ["room:a"]) for _ in range(2)]
        assert await cut_subscriptions(own_redis.url) >= 1
        for n in range(3):
            await speaker.send_json(
                {"publish": f"gap {n}", "group": "room:a", "exclude_self": True}
            )
        await wait_for_log(caplog, "restored after a gap")
        await speaker.send_json({"publish": "live", "group": "room:a", "exclude_self": True})
        heard = [(await receive_json(listener))["data"] for _ in range(4)]
        assert heard == ["gap 0", "gap 1", "gap 2", "live"]
        await listener.send_json({"publish": "to all", "group": "room:a"})
        assert (await receive_json(speaker))["data"] == "to all"  # and none of its own
        assert (await receive_json(listener))["data"] == "to all"
        await speaker.close()
        await listener.close()
    assert not broadcast_of(client.app)._exclusions  # no token left behind


async def test_a_failed_read_back_is_logged_and_live_delivery_goes_on(
    own_redis: RedisServer,
    aiohttp_client: Any,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """When the history cannot be read once the subscription is back, the process says
    which groups missed what, and live messages flow again."""
    caplog.set_level(logging.WARNING, "aioendpoints.broadcast")
    client = await aiohttp_client(members_app(own_redis.url, reconnect_delay=1.0))
    publisher_app = (await aiohttp_client(make_app(own_redis.url, HISTORY))).app
    async with asyncio.timeout(SCENARIO_TIMEOUT):
        member = await join(client, ["room:a"])
        backend = broadcast_of(client.app).backend

        async def unreadable(*args: Any, **options: Any) -> Any:
            raise aioendpoints.BroadcastUnavailable("no history today")

        monkeypatch.setattr(backend, "read", unreadable)
        assert await cut_subscriptions(own_redis.url) >= 1
        await aioendpoints.publish(publisher_app, "room:a", "lost")
        await wait_for_log(caplog, "Could not read back what 1 group(s)")
        assert "'room:a': no history today" in caplog.text
        live = await aioendpoints.publish(publisher_app, "room:a", "live")
        assert live is not None
        frame = await receive_json(member)
        if frame["data"] == "lost":  # published after all, under load, once resubscribed
            frame = await receive_json(member)
        assert (frame["offset"], frame["data"]) == (live.offset, "live")
        await member.close()
