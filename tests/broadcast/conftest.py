"""Fixtures for the broadcast tests: a real Redis, and the chat app over each backend."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

import aioendpoints
from aioendpoints import BroadcastUnavailable, History
from tests.conftest import require_redis_server
from tests.redis_server import RedisServer

from .chat_app import make_app

#: How long a test waits for a message it expects.
RECEIVE_TIMEOUT = 10.0


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A private redis-server that the test may kill and restart."""
    require_redis_server()
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture(params=["memory", "redis"])
def broadcast_url(request: pytest.FixtureRequest) -> str:
    """Each backend in turn: ``memory://`` and the shared Redis."""
    if request.param == "memory":
        return "memory://"
    return str(request.getfixturevalue("redis_url"))


@pytest.fixture
def group() -> str:
    """A group name no other test (or other process on the shared Redis) uses."""
    return f"room:{uuid.uuid4().hex}"


async def receive_json(ws: aiohttp.ClientWebSocketResponse) -> Any:
    """The next message, decoded from JSON, failing after RECEIVE_TIMEOUT."""
    message = await ws.receive(timeout=RECEIVE_TIMEOUT)
    assert message.type is aiohttp.WSMsgType.TEXT, message
    return message.json()


@dataclass
class ChatServers:
    """Members connect to ``members``; HTTP publishes go to ``publisher``.

    With ``memory://`` both are one app. With Redis they are two apps, each with its own
    backend connection, so every message really crosses Redis.
    """

    members: TestClient[Any, Any]
    publisher: TestClient[Any, Any]

    async def connect(self, *groups: str) -> aiohttp.ClientWebSocketResponse:
        """A client that has joined ``groups``."""
        ws = await self.members.ws_connect("/chat")
        assert "pid" in await receive_json(ws)
        for name in groups:
            await ws.send_json({"join": name})
            assert await receive_json(ws) == {"joined": name}
        return ws

    async def publish(self, group: str, message: Any) -> None:
        """Publish ``message`` through the publisher's HTTP route."""
        response = await self.publisher.post(f"/publish/{group}", json=message)
        assert response.status == 204, await response.text()

    async def members_count(self, group: str) -> int:
        """The group's members in the members' app."""
        response = await self.members.get(f"/members/{group}")
        return int(await response.json())

    async def wait_members(self, group: str, count: int) -> None:
        """Wait until the group has ``count`` members, failing after RECEIVE_TIMEOUT."""
        for _ in range(int(RECEIVE_TIMEOUT / 0.02)):
            if await self.members_count(group) == count:
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"{group} still has {await self.members_count(group)} members")


@pytest.fixture
async def chat(broadcast_url: str, aiohttp_client: Any) -> ChatServers:
    """The chat app over each backend."""
    members = await aiohttp_client(make_app(broadcast_url))
    if broadcast_url == "memory://":
        publisher = members
    else:
        publisher = await aiohttp_client(make_app(broadcast_url))
    return ChatServers(members, publisher)


#: What every group keeps in the history tests.
HISTORY = History(size=100, ttl=600)


@dataclass
class HistoryChat:
    """Members connect to ``members``; ``publisher`` publishes (another backend with Redis)."""

    members: Any
    publisher: Any

    async def connect(self) -> aiohttp.ClientWebSocketResponse:
        """A client of the chat app that has joined nothing yet."""
        ws = await self.members.ws_connect("/chat")
        assert "pid" in await receive_json(ws)
        return ws

    async def join(
        self, ws: aiohttp.ClientWebSocketResponse, group: str, since: str | None = None
    ) -> dict[str, Any]:
        """Join ``group`` from ``since``; the server's answer, with the frames replayed
        before it (join() sends the replay before it returns) as ``"replayed"``."""
        await ws.send_json({"join": group, "since": since})
        replayed = []
        while "joined" not in (answer := await receive_json(ws)):
            replayed.append(answer)
        assert answer["joined"] == group
        if replayed:
            answer["replayed"] = replayed
        return dict(answer)

    async def publish(self, group: str, message: Any) -> None:
        """Publish ``message`` through the publisher's HTTP route."""
        response = await self.publisher.post(f"/publish/{group}", json=message)
        assert response.status == 204, await response.text()


@pytest.fixture
async def history_chat(broadcast_url: str, aiohttp_client: Any) -> HistoryChat:
    """The chat app over each backend, every group keeping ``HISTORY``."""
    members = await aiohttp_client(make_app(broadcast_url, HISTORY))
    if broadcast_url == "memory://":
        return HistoryChat(members, members)
    return HistoryChat(members, await aiohttp_client(make_app(broadcast_url, HISTORY)))


async def publish_until_received(
    publisher_app: web.Application,
    member: aiohttp.ClientWebSocketResponse,
    group: str,
    *,
    history: bool = False,
) -> dict[str, Any]:
    """Publish from another app until the member gets a message; its frame. About 30 s at most.

    For waiting until delivery resumes after Redis went away: a message published before the
    members' process subscribed again is lost, one of an earlier attempt may arrive late.
    ``history``: the group keeps a history, so its frames wrap the message in ``data``.
    """
    for attempt in range(100):
        try:
            await aioendpoints.publish(publisher_app, group, {"n": attempt})
        except BroadcastUnavailable:
            await asyncio.sleep(0.1)
            continue
        try:
            message = await member.receive(timeout=0.2)
        except TimeoutError:
            continue
        frame: dict[str, Any] = message.json()
        published = frame["data"] if history else frame
        assert published["n"] in range(attempt + 1)
        return frame
    pytest.fail("no message reached the member after Redis came back")
