"""Vanish at every point: a client that disappears, by TCP reset or by FIN, wherever it is.

For each point of a connection's life, in both server modes, with a reset (SO_LINGER 0) and
with an ordinary close: ``on_disconnect`` runs once with the expected code (or not at all
before ``accept()``), the log holds nothing at WARNING or above and no traceback, and the
process's tasks and file descriptors come back to the baseline.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

import aioendpoints
from aioendpoints import WebSocket, WebSocketEndpoint, websocket_handler
from aioendpoints.broadcast import group_members
from tests.conftest import ModeServer
from tests.rawws import Opcode, RawWebSocket, new_key, upgrade_request
from tests.resources import Baseline, settle
from tests.server_modes import assert_quiet_ending

#: ``on_disconnect`` codes, in the order they came.
CODES_KEY = web.AppKey("codes", list[int])
#: Set by an endpoint when it has reached the point where the client is to vanish.
READY_KEY = web.AppKey("ready", asyncio.Event)
GROUP = "vanishing"


class Recorded(WebSocketEndpoint):
    """Records its on_disconnect code; tells the test when it is where it should be."""

    async def on_disconnect(self, ws: WebSocket, close_code: int) -> None:
        ws.app[CODES_KEY].append(close_code)


class Receiving(Recorded):
    """Waits for messages."""

    async def on_connect(self, ws: WebSocket) -> None:
        await ws.accept()
        ws.app[READY_KEY].set()


class AcceptingLate(Recorded):
    """Accepts only once its client is gone: the handshake is not finished yet."""

    async def on_connect(self, ws: WebSocket) -> None:
        ws.app[READY_KEY].set()
        transport = ws.request.transport
        await settle(lambda: transport is None or transport.is_closing(), within=10)
        await ws.accept()


class SendingBlocked(Recorded):
    """Sends to a client that reads nothing, until its buffer is full and it waits."""

    async def on_connect(self, ws: WebSocket) -> None:
        await ws.accept()
        transport = ws.request.transport
        assert transport is not None
        transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        for _ in range(10_000):
            if transport.get_write_buffer_size() > 64 * 1024:
                ws.app[READY_KEY].set()
            await ws.send("x" * 8192)


class Closing(Recorded):
    """Closes on the client's first message, and waits for the close frame back."""

    async def on_connect(self, ws: WebSocket) -> None:
        await ws.accept()
        ws.app[READY_KEY].set()

    async def on_receive(self, ws: WebSocket, data: Any) -> None:
        await ws.close(4000, "bye")


class Grouped(Recorded):
    """Joins a group, then waits for messages."""

    async def on_connect(self, ws: WebSocket) -> None:
        await ws.accept()
        await ws.join(GROUP)
        ws.app[READY_KEY].set()


def vanish(client: RawWebSocket, how: str) -> None:
    """End the client's side without a close frame: a TCP reset or an ordinary close."""
    if how == "reset":
        client.reset()
    else:
        client.writer.close()


# What the client does before it vanishes, each given the server, the connection (None
# for a handshake the client never finished) and how to vanish.
async def just_vanish(server: TestServer, client: RawWebSocket, how: str) -> None:
    await asyncio.wait_for(server.app[READY_KEY].wait(), 10)
    vanish(client, how)


async def ping_then_vanish(server: TestServer, client: RawWebSocket, how: str) -> None:
    await asyncio.wait_for(server.app[READY_KEY].wait(), 10)
    client.send_frame(Opcode.PING, b"still there?")
    vanish(client, how)


async def pinged_then_vanish(server: TestServer, client: RawWebSocket, how: str) -> None:
    """Wait for the server's heartbeat ping, and vanish instead of answering it."""
    await asyncio.wait_for(server.app[READY_KEY].wait(), 10)
    frame = await client.read_frame(within=10)
    assert frame.opcode == Opcode.PING
    vanish(client, how)


async def closed_then_vanish(server: TestServer, client: RawWebSocket, how: str) -> None:
    """Make the server close, read its close frame, and vanish instead of answering."""
    await asyncio.wait_for(server.app[READY_KEY].wait(), 10)
    client.send_text("close, please")
    frame = await client.read_frame(within=10)
    assert frame.opcode == Opcode.CLOSE
    vanish(client, how)


async def close_then_vanish(server: TestServer, client: RawWebSocket, how: str) -> None:
    """Send a close frame and vanish before the server's answer can arrive."""
    await asyncio.wait_for(server.app[READY_KEY].wait(), 10)
    client.send_close(1001, b"leaving")
    vanish(client, how)


@dataclass(frozen=True)
class Point:
    """A point in a connection's life where the client vanishes."""

    endpoint: type[Recorded]
    drive: Callable[[TestServer, RawWebSocket, str], Awaitable[None]]
    #: What on_disconnect gets; None: it must not run (never accepted).
    code: int | None
    options: dict[str, Any] = field(default_factory=dict)


POINTS = {
    "mid-handshake": Point(AcceptingLate, just_vanish, None),
    "mid-receive": Point(Receiving, just_vanish, 1006),
    "blocked-send": Point(SendingBlocked, just_vanish, 1006, {"send_timeout": 30}),
    "ping-then-vanish": Point(Receiving, ping_then_vanish, 1006),
    "server-ping-unanswered": Point(Receiving, pinged_then_vanish, 1006, {"heartbeat": 0.3}),
    "close-handshake-ours": Point(Closing, closed_then_vanish, 4000, {"close_timeout": 0.5}),
    "close-handshake-theirs": Point(Receiving, close_then_vanish, 1001),
    "joined-to-a-group": Point(Grouped, just_vanish, 1006),
}


def build_app(point: Point) -> web.Application:
    app = web.Application()
    aioendpoints.setup(app)
    app[CODES_KEY] = []
    app[READY_KEY] = asyncio.Event()
    app.router.add_get("/ws", websocket_handler(point.endpoint, **point.options))
    return app


@pytest.mark.parametrize("how", ["reset", "fin"])
@pytest.mark.parametrize("name", list(POINTS))
async def test_client_vanishes(
    each_mode_server: ModeServer, name: str, how: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The client vanishes at one point: the right code once, a quiet log, nothing left."""
    caplog.set_level(logging.DEBUG)
    point = POINTS[name]
    server = await each_mode_server(build_app(point))
    assert server.port is not None
    baseline = Baseline.take()
    if point.code is None:
        # The request is complete but the view has not accepted: a raw socket will do.
        _reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(upgrade_request("/ws", f"127.0.0.1:{server.port}", key=new_key()))
        await asyncio.wait_for(server.app[READY_KEY].wait(), 10)
        if how == "reset":
            linger = struct.pack("ii", 1, 0)
            writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
            writer.transport.abort()
        else:
            writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    else:
        client = await RawWebSocket.connect("127.0.0.1", server.port, "/ws", receive_buffer=4096)
        try:
            await point.drive(server, client, how)
        finally:
            client.writer.transport.abort()
        assert await settle(lambda: bool(server.app[CODES_KEY]), within=10)
        await asyncio.sleep(0.1)  # a second, wrong call would come right after the first
    assert server.app[CODES_KEY] == ([] if point.code is None else [point.code])
    assert await baseline.restored(within=10) == baseline
    if name == "joined-to-a-group":
        assert not group_members(server.app, GROUP)
    assert_quiet_ending(caplog)


async def test_half_sent_handshake_then_vanish(
    each_mode_server: ModeServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Half an upgrade request, then gone (reset or FIN): no view runs, nothing is logged."""
    caplog.set_level(logging.DEBUG)
    server = await each_mode_server(build_app(POINTS["mid-receive"]))
    assert server.port is not None
    baseline = Baseline.take()
    request = upgrade_request("/ws", f"127.0.0.1:{server.port}", key=new_key())
    for how in ("reset", "fin"):
        _reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(request[: len(request) // 2])
        await asyncio.sleep(0.05)
        if how == "reset":
            linger = struct.pack("ii", 1, 0)
            writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
            writer.transport.abort()
        else:
            writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    assert await baseline.restored(within=10) == baseline
    assert server.app[CODES_KEY] == []
    assert_quiet_ending(caplog)
