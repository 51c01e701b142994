"""The chat demo over a real Redis: two server processes sharing rooms, and Redis failing.

The processes run as the README says, ``python -m aiohttp.web ... examples.chat:init_app``,
with ``CHAT_REDIS_URL`` naming the test Redis; each test uses a room of its own.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from aioendpoints.testing import WebSocketConnect, WebSocketTestClient
from examples.chat import init_app
from examples.chat.login import COOKIE
from tests.chat_server import ChatServer, free_port, server_errors
from tests.conftest import require_redis_server
from tests.redis_server import RedisServer
from tests.test_chat import logged_in

#: How long a test waits for a message it expects.
RECEIVE_TIMEOUT = 10.0

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[list[str]]:
    """The base URLs of two demo processes sharing the test Redis."""
    logs = tmp_path_factory.mktemp("chat-redis")
    processes = [ChatServer(free_port(), logs / f"server-{n}.log", redis_url) for n in (1, 2)]
    for process in processes:
        process.start()
    yield [process.url.rstrip("/") for process in processes]
    for process in processes:
        process.stop()
    for process in processes:
        assert not server_errors(process.log()), process.log()


@pytest.fixture
def room() -> str:
    """A room no other test uses (the Redis may be shared)."""
    return f"redis-{uuid.uuid4().hex[:16]}"


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP client session for the test's WebSockets."""
    async with aiohttp.ClientSession() as client:
        yield client


async def receive(ws: aiohttp.ClientWebSocketResponse, kind: str) -> dict[str, Any]:
    """The next message (a room frame's data), which must be of type ``kind``."""
    message = await ws.receive_json(timeout=RECEIVE_TIMEOUT)
    if "offset" in message:  # the room keeps a history: its messages come positioned
        message = message["data"]
    assert message["type"] == kind, message
    return dict(message)


async def connect(
    session: aiohttp.ClientSession, base: str, room: str, name: str
) -> tuple[aiohttp.ClientWebSocketResponse, dict[str, Any]]:
    """Join ``room`` on the server at ``base``; return the socket and its ``welcome``."""
    login = await session.post(f"{base}/login", data={"name": name})
    cookie = login.cookies[COOKIE].value
    ws = await session.ws_connect(
        f"{base}/ws/rooms/{room}", headers={"Cookie": f"{COOKIE}={cookie}"}
    )
    welcome = await receive(ws, "welcome")
    return ws, welcome


async def test_a_message_reaches_the_other_process(
    servers: list[str], room: str, session: aiohttp.ClientSession
) -> None:
    """A message said on one process reaches a member connected to the other."""
    ada, _ = await connect(session, servers[0], room, "Ada")
    await receive(ada, "present")
    await receive(ada, "joined")
    bob, _ = await connect(session, servers[1], room, "Bob")
    await receive(bob, "present")
    await receive(bob, "joined")
    await receive(ada, "joined")  # Bob's, through Redis

    await bob.send_json({"type": "message", "text": "hello across"})
    message = await receive(ada, "message")
    assert (message["name"], message["text"]) == ("Bob", "hello across")


async def test_the_processes_have_different_server_ids(
    servers: list[str], room: str, session: aiohttp.ClientSession
) -> None:
    """Each process has its own server id, so pages know when to answer a ``joined``."""
    _, on_first = await connect(session, servers[0], room, "Ada")
    _, on_second = await connect(session, servers[1], room, "Bob")
    assert on_first["server"] != on_second["server"]


async def test_a_newcomer_learns_members_on_the_other_process(
    servers: list[str], room: str, session: aiohttp.ClientSession
) -> None:
    """The other process's members are not in the local list; their answers bring them."""
    ada, ada_welcome = await connect(session, servers[0], room, "Ada")
    await receive(ada, "present")
    await receive(ada, "joined")
    bob, bob_welcome = await connect(session, servers[1], room, "Bob")
    assert [member["name"] for member in (await receive(bob, "present"))["members"]] == ["Bob"]
    await receive(bob, "joined")

    joined = await receive(ada, "joined")
    assert (joined["id"], joined["server"]) == (bob_welcome["id"], bob_welcome["server"])
    await ada.send_json({"type": "present", "to": joined["id"]})
    answer = await receive(bob, "present")
    assert answer["members"] == [{"id": ada_welcome["id"], "name": "Ada"}]


async def test_leaving_is_seen_on_the_other_process(
    servers: list[str], room: str, session: aiohttp.ClientSession
) -> None:
    """When a member leaves, a member on the other process is told its id and name."""
    ada, ada_welcome = await connect(session, servers[0], room, "Ada")
    await receive(ada, "present")
    await receive(ada, "joined")
    bob, _ = await connect(session, servers[1], room, "Bob")
    await receive(bob, "present")
    await receive(bob, "joined")
    await receive(ada, "joined")

    await ada.close()
    assert await receive(bob, "left") == {"type": "left", "id": ada_welcome["id"], "name": "Ada"}


@pytest.fixture
async def chat_with_stopped_redis(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, websocket_connect: WebSocketConnect
) -> AsyncIterator[tuple[web.Application, WebSocketTestClient]]:
    """The demo on a private Redis, with Ada in the lobby, after that Redis has stopped."""
    require_redis_server()
    redis = RedisServer(tmp_path)
    redis.start()
    try:
        monkeypatch.setenv("CHAT_REDIS_URL", redis.url)
        app = init_app()
        ada = await websocket_connect(app, "/ws/rooms/lobby", headers=logged_in(app, "Ada"))
        for kind in ("welcome", "present"):
            assert (await ada.receive_json())["type"] == kind
        assert (await ada.receive_json())["data"]["type"] == "joined"  # a room frame
        redis.kill()
        yield app, ada
    finally:
        redis.kill()


async def test_saying_while_redis_is_down_gets_an_error_back(
    chat_with_stopped_redis: tuple[web.Application, WebSocketTestClient],
) -> None:
    """A message that cannot be published is answered with an error; the socket stays open."""
    _, ada = chat_with_stopped_redis
    await ada.send_json({"type": "message", "text": "anyone?"})
    await ada.expect_json(
        {"type": "error", "error": "the chat is unavailable, try again", "path": None}
    )


async def test_joining_while_redis_is_down_closes_with_1013(
    chat_with_stopped_redis: tuple[web.Application, WebSocketTestClient],
    websocket_connect: WebSocketConnect,
) -> None:
    """A newcomer is closed with 1013 (try again later), which the page retries."""
    app, _ = chat_with_stopped_redis
    bob = await websocket_connect(app, "/ws/rooms/lobby", headers=logged_in(app, "Bob"))
    assert (await bob.receive_json())["type"] == "welcome"
    await bob.expect_close(1013, "the chat is unavailable")
