"""Small helpers shared by the core tests."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from aiohttp import web

import aioendpoints
from aioendpoints import WebSocketRoutes

from .server_modes import ProductionServer


def make_app(routes: WebSocketRoutes | None = None, *, setup: bool = True) -> web.Application:
    """An application serving ``routes``, with ``aioendpoints.setup()`` unless told otherwise."""
    app = web.Application()
    if setup:
        aioendpoints.setup(app)
    if routes is not None:
        app.add_routes(routes)
    return app


async def eventually(check: Callable[[], Any], within: float = 5.0) -> None:
    """Wait until ``check()`` is truthy; fail after ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not check():
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {within} s: {check}")
        await asyncio.sleep(0.01)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def connect_when_up(
    session: aiohttp.ClientSession, url: str, within: float = 20.0
) -> aiohttp.ClientWebSocketResponse:
    """Open a WebSocket to a server that is still starting; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        try:
            return await session.ws_connect(url)
        except aiohttp.ClientConnectionError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


@asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[str]:
    """Serve ``app`` as in production on a free loopback port; yield its base URL."""
    async with ProductionServer(app) as server:
        yield str(server.make_url("")).rstrip("/")
