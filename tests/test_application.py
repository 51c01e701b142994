"""App-wide parts: the connection registry and graceful shutdown, in-process and launched."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import aiohttp
import pytest
from aiohttp import WSMsgType, web

import aioendpoints
from aioendpoints import CloseCode, WebSocket, WebSocketEndpoint, WebSocketRoutes
from tests.conftest import ModeClient

from .helpers import connect_when_up, eventually, free_port, make_app

ROOT = Path(__file__).resolve().parent.parent


async def test_registry_tracks_open_connections(each_mode_client: ModeClient) -> None:
    """setup() installs a registry that holds each accepted connection until it ends."""
    routes = WebSocketRoutes()
    routes.add_websocket_route("/", WebSocketEndpoint)
    app = make_app(routes)
    registry = app[aioendpoints.CONNECTIONS_KEY]
    client = await each_mode_client(app)
    async with client.ws_connect("/"), client.ws_connect("/"):
        await eventually(lambda: len(registry) == 2)
        assert all(isinstance(ws, WebSocket) and ws.accepted for ws in registry)
    await eventually(lambda: len(registry) == 0)


def test_setup_twice_is_an_error() -> None:
    """Calling setup() twice on one app is a RuntimeError, not a silent second registry."""
    app = web.Application()
    aioendpoints.setup(app)
    with pytest.raises(RuntimeError, match="already"):
        aioendpoints.setup(app)


async def test_shutdown_closes_every_socket_with_1001(each_mode_client: ModeClient) -> None:
    """On shutdown every open socket is closed with 1001 and on_disconnect runs for each."""
    routes = WebSocketRoutes()
    disconnects: list[int] = []

    @routes.websocket_route("/")
    class Endpoint(WebSocketEndpoint):
        async def on_disconnect(self, ws: WebSocket, close_code: int) -> None:
            disconnects.append(close_code)

    app = make_app(routes)
    client = await each_mode_client(app)
    sockets = [await client.ws_connect("/") for _ in range(5)]
    await eventually(lambda: len(app[aioendpoints.CONNECTIONS_KEY]) == 5)
    started = time.monotonic()
    await app.shutdown()
    for ws in sockets:
        message = await ws.receive(timeout=5)
        assert (message.type, message.data) == (WSMsgType.CLOSE, CloseCode.GOING_AWAY)
        await ws.close()
    await eventually(lambda: len(disconnects) == 5)
    assert disconnects == [CloseCode.GOING_AWAY] * 5
    assert time.monotonic() - started < 5


async def test_shutdown_ends_a_view_that_is_busy_sending(each_mode_client: ModeClient) -> None:
    """A view in a send loop sees WebSocketDisconnect(1001) and ends quietly at shutdown."""
    routes = WebSocketRoutes()
    ended: list[int | None] = []

    @routes.websocket_route("/")
    async def ticker(ws: WebSocket) -> None:
        await ws.accept()
        try:
            while True:
                await ws.send("tick")
                await asyncio.sleep(0.01)
        finally:
            ended.append(ws.close_code)

    app = make_app(routes)
    client = await each_mode_client(app)
    ws = await client.ws_connect("/")
    assert await ws.receive_str(timeout=5) == "tick"
    await app.shutdown()
    await eventually(lambda: ended == [CloseCode.GOING_AWAY])
    await ws.close()


async def test_launched_with_python_m_aiohttp_web() -> None:
    """`python -m aiohttp.web` serves the example app to a real client (see test_shutdown)."""
    port = free_port()
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "aiohttp.web", "-H", "127.0.0.1", "-P", str(port),
        "examples.echo:init_app",
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        async with aiohttp.ClientSession() as session:
            ws = await connect_when_up(session, f"http://127.0.0.1:{port}/echo")
            await ws.send_str("launched")
            assert await ws.receive_str(timeout=5) == "You said: launched"
            assert (await ws.receive(timeout=5)).data == CloseCode.NORMAL_CLOSURE
            room = await session.ws_connect(f"http://127.0.0.1:{port}/rooms/blue")
            await room.send_json({"n": 1})
            assert await room.receive_json(timeout=5) == {"room": "blue", "echo": {"n": 1}}
            await room.close()
    finally:
        server.kill()
        await server.wait()
