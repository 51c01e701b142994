"""The keepalive: a silent peer is dropped with 1006, any data counts as an answer, and the
fallback to aiohttp's heartbeat when the transport cannot be watched."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer

import aioendpoints
from aioendpoints import WebSocket, WebSocketEndpoint, WebSocketRoutes
from aioendpoints import keepalive as keepalive_module
from aioendpoints.keepalive import PING_FRAME, Keepalive

from .helpers import eventually

HEARTBEAT = 0.5
ENDED_KEY = web.AppKey("ended", list)
PROTOCOLS_KEY = web.AppKey("protocols", list)

Start = Callable[[web.Application], Awaitable[str]]


class Echo(WebSocketEndpoint):
    encoding = "text"

    async def on_connect(self, ws: WebSocket) -> None:
        await ws.accept()
        transport = ws.request.transport
        assert transport is not None
        ws.app[PROTOCOLS_KEY].append(type(transport.get_protocol()).__name__)

    async def on_receive(self, ws: WebSocket, data: Any) -> None:
        await ws.send(data)

    async def on_disconnect(self, ws: WebSocket, close_code: int) -> None:
        ws.app[ENDED_KEY].append(close_code)


def echo_app(*middlewares: Any) -> web.Application:
    routes = WebSocketRoutes()
    routes.add_websocket_route("/ws", Echo, heartbeat=HEARTBEAT)
    app = web.Application(middlewares=middlewares)
    aioendpoints.setup(app)
    app[ENDED_KEY] = []
    app[PROTOCOLS_KEY] = []
    app.add_routes(routes)
    return app


@pytest.fixture(params=["test-server", "app-runner"])
async def start(
    request: pytest.FixtureRequest, aiohttp_server: AiohttpServer
) -> AsyncIterator[Start]:
    """Serve an app under pytest-aiohttp's test server, or under web.AppRunner as run_app does.

    The test server cancels a handler whose peer leaves; AppRunner does not.
    """
    runners: list[web.AppRunner] = []

    async def start(app: web.Application) -> str:
        if request.param == "test-server":
            server = await aiohttp_server(app)
            return f"http://127.0.0.1:{server.port}/ws"
        runner = web.AppRunner(app)
        await runner.setup()
        runners.append(runner)
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        return f"http://127.0.0.1:{port}/ws"

    yield start
    for runner in runners:
        await runner.cleanup()


async def test_silent_peer_is_dropped_with_1006(
    start: Start, caplog: pytest.LogCaptureFixture
) -> None:
    """A peer that answers nothing is aborted; on_disconnect gets 1006; nothing is logged."""
    app = echo_app()
    url = await start(app)
    with caplog.at_level(logging.WARNING, logger="aioendpoints"):
        async with aiohttp.ClientSession() as session:
            # autoping=False and never reading: pings go unanswered.
            ws = await session.ws_connect(url, autoping=False)
            await eventually(lambda: app[ENDED_KEY], within=20 * HEARTBEAT)
            assert app[ENDED_KEY] == [1006]
            assert app[PROTOCOLS_KEY] == ["Keepalive"]
            await ws.close()
    assert caplog.records == []
    assert keepalive_module._sweepers == {}


async def test_any_data_counts_as_an_answer(start: Start) -> None:
    """A peer that never answers pings but keeps sending stays connected."""
    app = echo_app()
    url = await start(app)
    async with aiohttp.ClientSession() as session, session.ws_connect(url, autoping=False) as ws:
        # Twenty messages over about five heartbeats, each answered by the echo.
        for number in range(20):
            await ws.send_str(str(number))
            await asyncio.sleep(HEARTBEAT / 4)
        assert app[ENDED_KEY] == []
        echoes = []
        while len(echoes) < 20:
            message = await ws.receive(timeout=5)
            if message.type is aiohttp.WSMsgType.TEXT:
                echoes.append(message.data)
            else:
                assert message.type is aiohttp.WSMsgType.PING
        assert echoes == [str(number) for number in range(20)]
    await eventually(lambda: app[ENDED_KEY])
    assert app[ENDED_KEY] == [1000]


async def test_answering_peer_gets_a_ping_per_heartbeat(start: Start) -> None:
    """An idle peer is pinged, and its pongs keep it connected."""
    app = echo_app()
    url = await start(app)
    async with aiohttp.ClientSession() as session, session.ws_connect(url, autoping=False) as ws:
        for _ in range(3):
            message = await ws.receive(timeout=20 * HEARTBEAT)
            assert message.type is aiohttp.WSMsgType.PING
            await ws.pong(message.data)
        assert app[ENDED_KEY] == []
    await eventually(lambda: app[ENDED_KEY])
    assert app[ENDED_KEY] == [1000]


class Forwarder(asyncio.Protocol):
    """Another layer between the transport and aiohttp, as some servers add."""

    def __init__(self, protocol: asyncio.Protocol) -> None:
        self.protocol = protocol

    def data_received(self, data: bytes) -> None:
        self.protocol.data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.protocol.connection_lost(exc)


@web.middleware
async def stand_between(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    transport = request.transport
    assert transport is not None
    transport.set_protocol(Forwarder(request.protocol))
    return await handler(request)


async def test_fallback_to_aiohttp_heartbeat(
    start: Start, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A transport the keepalive cannot watch gets aiohttp's heartbeat, with one warning."""
    monkeypatch.setattr(keepalive_module, "_warned", False)
    app = echo_app(stand_between)
    url = await start(app)
    with caplog.at_level(logging.WARNING, logger="aioendpoints"):
        async with aiohttp.ClientSession() as session:
            ws = await session.ws_connect(url, autoping=False)
            await eventually(lambda: app[ENDED_KEY], within=20 * HEARTBEAT)
            assert app[ENDED_KEY] == [1006]
            assert app[PROTOCOLS_KEY] == ["Forwarder"]
            await ws.close()
            async with session.ws_connect(url) as ws:
                await ws.send_str("fine")
                assert await ws.receive_str(timeout=5) == "fine"
    warnings = [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert len(warnings) == 1
    assert "using aiohttp's heartbeat" in warnings[0].getMessage()


class FakeTransport(asyncio.Transport):
    """Records what the sweeper does to a connection."""

    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []
        self.aborted = False
        self.protocol: asyncio.BaseProtocol = asyncio.Protocol()

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self.protocol

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.protocol = protocol

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written.append(bytes(data))

    def is_closing(self) -> bool:
        return self.aborted

    def abort(self) -> None:
        self.aborted = True


async def test_sweeper_pings_a_silent_peer_once_then_aborts() -> None:
    """Visits: data seen, then a ping, then the abort; so at most 1.5 intervals of silence."""
    transport = FakeTransport()
    sweeper = keepalive_module._Sweeper(asyncio.get_running_loop(), 100.0)
    keepalive = Keepalive(transport, sweeper)
    sweeper.add(keepalive)
    try:
        sweeper._visit()  # the handshake counts as data
        assert (transport.written, transport.aborted) == ([], False)
        sweeper._visit()
        assert (transport.written, transport.aborted) == ([PING_FRAME], False)
        sweeper._visit()
        assert (transport.written, transport.aborted) == ([PING_FRAME], True)
        assert not keepalive.watching
    finally:
        sweeper.discard(keepalive)


class Recorder(asyncio.Protocol):
    def __init__(self, received: list[bytes]) -> None:
        self.received = received

    def data_received(self, data: bytes) -> None:
        self.received.append(data)


async def test_sweeper_counts_any_chunk_as_an_answer() -> None:
    """A chunk after the ping, whatever it holds, keeps the connection."""
    transport = FakeTransport()
    received: list[bytes] = []
    transport.protocol = Recorder(received)
    sweeper = keepalive_module._Sweeper(asyncio.get_running_loop(), 100.0)
    keepalive = Keepalive(transport, sweeper)
    sweeper.add(keepalive)
    try:
        sweeper._visit()
        sweeper._visit()
        keepalive.data_received(b"\x81\x02hi")
        sweeper._visit()
        sweeper._visit()
        assert transport.written == [PING_FRAME, PING_FRAME]
        assert not transport.aborted
        assert received == [b"\x81\x02hi"]
    finally:
        sweeper.discard(keepalive)


async def test_sweeper_forgets_members_in_any_order() -> None:
    """Members leave from the middle, the end and the start; the others stay watched."""
    sweeper = keepalive_module._Sweeper(asyncio.get_running_loop(), 100.0)
    members = [Keepalive(FakeTransport(), sweeper) for _ in range(4)]
    for member in members:
        sweeper.add(member)
    for leaving in (1, 3, 0):
        members[leaving].stop()
        members[leaving].stop()  # a second stop does nothing
    assert sweeper._members == [members[2]]
    assert sweeper._timer is not None
    members[2].stop()
    assert (sweeper._members, sweeper._timer) == ([], None)


def test_keepalive_has_no_instance_dict() -> None:
    """The per-connection keepalive is slotted."""
    loop = asyncio.new_event_loop()
    try:
        keepalive = Keepalive(FakeTransport(), keepalive_module._Sweeper(loop, 1.0))
        assert not hasattr(keepalive, "__dict__")
    finally:
        loop.close()
