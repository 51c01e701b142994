"""The Redis backend: across processes, across gunicorn workers, and through restarts."""

from __future__ import annotations

import asyncio
import gc
import logging
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

import aioendpoints
from aioendpoints import Broadcast, BroadcastUnavailable
from aioendpoints.broadcast.redis import RedisBackend
from tests.redis_server import RedisServer

from .chat_app import make_app
from .conftest import ChatServers, publish_until_received, receive_json
from .processes import aiohttp_web, free_port, gunicorn, serve


async def join(session: aiohttp.ClientSession, base: str, group: str) -> tuple[Any, int]:
    """A client of the chat app at ``base`` that joined ``group``, and its server's pid."""
    ws = await session.ws_connect(f"{base}/chat")
    pid = (await receive_json(ws))["pid"]
    await ws.send_json({"join": group})
    assert await receive_json(ws) == {"joined": group}
    return ws, pid


async def test_messages_cross_two_server_processes(redis_url: str, group: str) -> None:
    """Two ``python -m aiohttp.web`` processes sharing Redis deliver each other's messages."""
    port_a, port_b = free_port(), free_port()
    async with (
        serve(aiohttp_web(port_a), redis_url, port_a) as base_a,
        serve(aiohttp_web(port_b), redis_url, port_b) as base_b,
        aiohttp.ClientSession() as session,
    ):
        ws_a, pid_a = await join(session, base_a, group)
        ws_b, pid_b = await join(session, base_b, group)
        assert pid_a != pid_b
        await ws_a.send_json({"publish": {"from": "a"}, "group": group, "exclude_self": True})
        assert await receive_json(ws_b) == {"from": "a"}
        await ws_b.send_json({"publish": {"from": "b"}, "group": group, "exclude_self": True})
        assert await receive_json(ws_a) == {"from": "b"}
        await ws_a.close()
        await ws_b.close()


async def test_messages_cross_gunicorn_workers(redis_url: str, group: str) -> None:
    """Under gunicorn with two aiohttp workers, a message crosses from one worker to the other."""
    port = free_port()
    async with (
        serve(gunicorn(port, workers=2), redis_url, port) as base,
        aiohttp.ClientSession() as session,
    ):
        by_worker: dict[int, Any] = {}
        # The kernel picks the worker, and the second may still be booting: connect until
        # both are seen, for at most about 20 seconds.
        for _ in range(400):
            ws, pid = await join(session, base, group)
            if pid in by_worker:
                await ws.close()
                await asyncio.sleep(0.05)
            else:
                by_worker[pid] = ws
            if len(by_worker) == 2:
                break
        assert len(by_worker) == 2, "every connection went to the same worker"
        first, second = by_worker.values()
        await first.send_json({"publish": {"text": "hi"}, "group": group, "exclude_self": True})
        assert await receive_json(second) == {"text": "hi"}
        for ws in by_worker.values():
            await ws.close()


async def test_subscribers_recover_after_redis_restarts(
    own_redis: RedisServer, aiohttp_client: Any, group: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Killed and restarted, Redis delivers again to the same members; the gap is logged."""
    caplog.set_level(logging.WARNING, "aioendpoints.broadcast")
    members = await aiohttp_client(make_app(own_redis.url))
    publisher_app = make_app(own_redis.url)
    await aiohttp_client(publisher_app)
    member = await ChatServers(members, members).connect(group)
    await aioendpoints.publish(publisher_app, group, {"n": "before"})
    assert await receive_json(member) == {"n": "before"}

    own_redis.kill()
    await asyncio.sleep(0.3)
    own_redis.start()

    await publish_until_received(publisher_app, member, group)
    assert "Lost the Redis subscription" in caplog.text
    assert "restored after a gap" in caplog.text


async def test_subscribers_recover_after_redis_freezes(
    own_redis: RedisServer, aiohttp_client: Any, group: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A Redis that stops answering but keeps its connections open is noticed and recovered."""
    caplog.set_level(logging.WARNING, "aioendpoints.broadcast")

    def quick_checks() -> Broadcast:
        return Broadcast(
            RedisBackend(
                own_redis.url, health_check_interval=0.2, subscribe_timeout=0.5, command_timeout=1
            )
        )

    members = await aiohttp_client(make_app(quick_checks()))
    publisher_app = make_app(quick_checks())
    await aiohttp_client(publisher_app)
    member = await ChatServers(members, members).connect(group)

    own_redis.pause()
    for _ in range(100):  # until the health check gives up on the frozen connection
        if "Lost the Redis subscription" in caplog.text:
            break
        await asyncio.sleep(0.05)
    else:
        pytest.fail("a frozen Redis went unnoticed")
    own_redis.resume()

    await publish_until_received(publisher_app, member, group)
    assert "restored after a gap" in caplog.text


async def test_publish_while_redis_is_down_raises(
    own_redis: RedisServer, aiohttp_client: Any, group: str
) -> None:
    """Publishing without Redis raises BroadcastUnavailable instead of losing the message."""
    app = make_app(own_redis.url)
    await aiohttp_client(app)
    own_redis.kill()
    with pytest.raises(BroadcastUnavailable, match=group):
        await aioendpoints.publish(app, group, {"text": "lost?"})


async def test_join_while_redis_is_down_raises(
    own_redis: RedisServer, aiohttp_client: Any, group: str
) -> None:
    """Joining a new group without Redis fails the view (1011) instead of joining deaf."""
    client = await aiohttp_client(make_app(own_redis.url))
    member = await ChatServers(client, client).connect()
    own_redis.kill()
    await member.send_json({"join": group})
    closing = await member.receive(timeout=10)
    assert closing.type is aiohttp.WSMsgType.CLOSE
    assert closing.data == 1011
    assert aioendpoints.group_members(client.server.app, group) == frozenset()


async def test_one_pubsub_connection_per_process(
    own_redis: RedisServer, aiohttp_client: Any, group: str
) -> None:
    """However many sockets and groups, a process holds one pub/sub connection."""
    chat = ChatServers(*[await aiohttp_client(make_app(own_redis.url))] * 2)
    for index in range(10):
        await chat.connect(f"{group}:{index % 5}", f"{group}:all")
    assert await _pubsub_clients(own_redis.url) == 1


async def test_shutdown_leaves_no_connection_or_task(own_redis: RedisServer, group: str) -> None:
    """After the app stops, it holds no Redis connection and no broadcast task remains."""
    client = TestClient(TestServer(make_app(own_redis.url)))
    await client.start_server()
    member = await ChatServers(client, client).connect(group)
    await aioendpoints.publish(client.server.app, group, {"text": "bye"})
    assert await receive_json(member) == {"text": "bye"}
    assert _library_tasks() != []  # the subscription reader, while running
    await client.close()
    assert _library_tasks() == []
    for _ in range(50):
        if await _clients(own_redis.url) == 1:  # only the one asking
            break
        await asyncio.sleep(0.05)
    assert await _clients(own_redis.url) == 1


async def test_startup_fails_when_redis_is_unreachable() -> None:
    """An app whose Redis does not answer fails to start, loudly."""
    server = TestServer(make_app(f"redis://127.0.0.1:{free_port()}/0"))
    try:
        with pytest.raises(BroadcastUnavailable, match="cannot reach Redis"):
            await server.start_server()
    finally:
        await server.close()


def _library_tasks() -> list[asyncio.Task[Any]]:
    """The running tasks whose code is aioendpoints'."""
    package = str(Path(aioendpoints.__file__).parent)
    return [
        task
        for task in asyncio.all_tasks()
        if getattr(task.get_coro(), "cr_code", None) is not None
        and task.get_coro().cr_code.co_filename.startswith(package)  # type: ignore[union-attr]
    ]


async def _clients(url: str) -> int:
    """How many connections Redis has, counting the one that asks."""
    from redis.asyncio import Redis

    async with Redis.from_url(url) as redis:
        return len(await redis.client_list())


async def _pubsub_clients(url: str) -> int:
    """How many pub/sub connections Redis has."""
    from redis.asyncio import Redis

    async with Redis.from_url(url) as redis:
        return len(await redis.client_list(_type="pubsub"))


async def test_a_join_cut_by_a_restart_leaves_no_unretrieved_future(
    own_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A join whose subscribe fails as Redis dies leaves no 'never retrieved' exception."""
    caplog.set_level(logging.ERROR, "asyncio")
    backend = RedisBackend(own_redis.url)
    await backend.start(lambda group, opcode, payload: None)
    try:
        assert backend._pubsub is not None
        send_subscribe = backend._pubsub.subscribe

        async def subscribe_as_redis_dies(*channels: Any) -> None:
            own_redis.kill()
            for _ in range(1000):  # until the reader has seen the loss, about 10 s
                if not backend._connected:
                    break
                await asyncio.sleep(0.01)
            else:
                pytest.fail("the reader did not notice that Redis died")
            await send_subscribe(*channels)

        backend._pubsub.subscribe = subscribe_as_redis_dies  # type: ignore[method-assign]
        with pytest.raises(BroadcastUnavailable, match="cannot join"):
            await backend.subscribe("room")
    finally:
        await backend.stop()
    gc.collect()
    assert "never retrieved" not in caplog.text
