"""Fixtures for the broadcast tests: a real Redis, and the chat app over each backend."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import service_missing

from .chat_app import make_app
from .redis_server import REDIS_SERVER, RedisServer

#: How long a test waits for a message it expects.
RECEIVE_TIMEOUT = 10.0


def _require_redis_server() -> None:
    if importlib.util.find_spec("redis") is None:
        service_missing("the redis package is not installed (pip install 'aioendpoints[redis]')")
    if not os.access(REDIS_SERVER, os.X_OK):
        service_missing(f"redis-server is not installed ({REDIS_SERVER})")


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The shared Redis: AIOENDPOINTS_REDIS_URL, or a redis-server started for the session."""
    if importlib.util.find_spec("redis") is None:
        service_missing("the redis package is not installed (pip install 'aioendpoints[redis]')")
    url = os.environ.get("AIOENDPOINTS_REDIS_URL")
    if url:
        yield url
        return
    _require_redis_server()
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server.url
    finally:
        server.kill()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A private redis-server that the test may kill and restart."""
    _require_redis_server()
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
