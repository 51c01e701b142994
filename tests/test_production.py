"""How connections end, under both server modes: production (no handler cancellation) and
pytest-aiohttp's test server (handler cancelled when its peer goes away).

A vanished peer is an ordinary end: ``on_disconnect`` gets 1006, ``async for`` just ends,
nothing is logged at WARNING or above and no traceback at all. A server fault logs exactly
one traceback.
"""

from __future__ import annotations

import asyncio
import decimal
import logging
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

import aioendpoints
from aioendpoints import (
    CONNECTIONS_KEY,
    WebSocket,
    WebSocketDisconnect,
    WebSocketRoutes,
    websocket_handler,
)
from tests.conftest import ModeServer
from tests.echo_app import DISCONNECTS_KEY, CountedEndpoint
from tests.helpers import eventually
from tests.rawws import Close, Opcode, RawWebSocket, http_request, new_key, upgrade_request
from tests.resources import Baseline
from tests.server_modes import PRODUCTION, assert_one_traceback, assert_quiet_ending

#: What the views of these tests saw, in order.
SEEN_KEY = web.AppKey("seen", list[Any])


def build_app(routes: WebSocketRoutes) -> web.Application:
    app = web.Application()
    aioendpoints.setup(app)
    app[DISCONNECTS_KEY] = []
    app[SEEN_KEY] = []
    app.add_routes(routes)
    return app


async def connect(server: TestServer, path: str = "/ws") -> RawWebSocket:
    assert server.port is not None
    return await RawWebSocket.connect("127.0.0.1", server.port, path)


async def vanish(client: RawWebSocket, how: str) -> None:
    """End the client's side without a close frame: a TCP reset or a FIN."""
    if how == "reset":
        client.reset()
    else:
        await client.aclose()


def only_open_connection(server: TestServer) -> WebSocket:
    (websocket,) = server.app[CONNECTIONS_KEY]
    return websocket


@pytest.mark.parametrize("how", ["reset", "fin"])
async def test_async_for_ends_when_the_client_vanishes(
    each_mode_server: ModeServer, server_mode: str, how: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A vanished client ends `async for` (or cancels the view): 1006, nothing logged."""
    caplog.set_level(logging.DEBUG)
    routes = WebSocketRoutes()

    @routes.websocket_route("/ws")
    async def view(ws: WebSocket) -> None:
        await ws.accept()
        try:
            async for message in ws:
                ws.app[SEEN_KEY].append(message)
            ws.app[SEEN_KEY].append(("loop ended", ws.close_code))
        finally:
            ws.app[SEEN_KEY].append(("view ended", ws.close_code))

    server = await each_mode_server(build_app(routes))
    client = await connect(server)
    client.send_text("hello")
    await eventually(lambda: server.app[SEEN_KEY] == ["hello"])
    await vanish(client, how)
    await eventually(lambda: server.app[SEEN_KEY][-1][0] == "view ended")
    if server_mode == PRODUCTION:
        # Not cancelled: the loop itself ends, and the code after it runs.
        assert server.app[SEEN_KEY] == ["hello", ("loop ended", 1006), ("view ended", 1006)]
    else:
        # The test server cancels the view where it waits, before the drop is known.
        assert server.app[SEEN_KEY] == ["hello", ("view ended", None)]
    assert_quiet_ending(caplog)


class Echo(CountedEndpoint):
    encoding = "text"

    async def on_receive(self, ws: WebSocket, data: Any) -> None:
        await ws.send(data)


@pytest.mark.parametrize("how", ["reset", "fin"])
async def test_on_disconnect_gets_1006_when_the_client_vanishes(
    each_mode_server: ModeServer, how: str, caplog: pytest.LogCaptureFixture
) -> None:
    """An endpoint whose client vanishes: on_disconnect(1006) once, nothing logged."""
    caplog.set_level(logging.DEBUG)
    app = build_app(WebSocketRoutes())
    app.router.add_get("/ws", websocket_handler(Echo))
    server = await each_mode_server(app)
    baseline = Baseline.take()
    client = await connect(server)
    client.send_text("ping")
    assert await client.read_text() == "ping"
    await vanish(client, how)
    await eventually(lambda: server.app[DISCONNECTS_KEY] == [("Echo", 1006)])
    assert await baseline.restored() == baseline
    assert_quiet_ending(caplog)


class Flood(CountedEndpoint):
    """Sends 64 KiB messages until the send fails; records how it failed."""

    async def on_connect(self, ws: WebSocket) -> None:
        await ws.accept()
        try:
            for _ in range(10_000):
                await ws.send("x" * 65536)
        except WebSocketDisconnect as disconnect:
            ws.app[SEEN_KEY].append(disconnect.code)


async def test_reset_during_a_blocked_send_is_a_disconnect(
    each_mode_server: ModeServer, server_mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A reset while send() waits for the reader: WebSocketDisconnect(1006), no traceback."""
    caplog.set_level(logging.DEBUG)
    app = build_app(WebSocketRoutes())
    app.router.add_get("/ws", websocket_handler(Flood, send_timeout=60))
    server = await each_mode_server(app)
    baseline = Baseline.take()
    client = await connect(server)
    await eventually(lambda: len(server.app[CONNECTIONS_KEY]) == 1)
    transport = only_open_connection(server).request.transport
    assert transport is not None
    # The client reads nothing: the server's buffer fills up and its send waits.
    await eventually(lambda: transport.get_write_buffer_size() > 256 * 1024, within=10)
    client.reset()
    await eventually(lambda: server.app[DISCONNECTS_KEY] == [("Flood", 1006)])
    if server_mode == PRODUCTION:
        assert server.app[SEEN_KEY] == [1006]
    assert await baseline.restored() == baseline
    assert_quiet_ending(caplog)


class LateReader(CountedEndpoint):
    """Starts reading only once its client is gone, so that the pong cannot be written."""

    async def on_connect(self, ws: WebSocket) -> None:
        await ws.accept()
        transport = ws.request.transport
        await eventually(lambda: transport is None or transport.is_closing())


@pytest.mark.parametrize("how", ["reset", "fin"])
async def test_ping_then_vanish_is_a_disconnect(
    each_mode_server: ModeServer, how: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A ping whose sender is gone before the pong: on_disconnect(1006), no traceback."""
    caplog.set_level(logging.DEBUG)
    app = build_app(WebSocketRoutes())
    app.router.add_get("/ws", websocket_handler(LateReader))
    server = await each_mode_server(app)
    baseline = Baseline.take()
    for _ in range(3):
        client = await connect(server)
        client.send_frame(Opcode.PING, b"are you there")
        await vanish(client, how)
    await eventually(lambda: server.app[DISCONNECTS_KEY] == [("LateReader", 1006)] * 3)
    assert await baseline.restored() == baseline
    assert_quiet_ending(caplog)


async def test_ping_is_answered_with_a_pong(each_mode_server: ModeServer) -> None:
    """A ping received while the view waits for a message gets its pong, payload unchanged."""
    app = build_app(WebSocketRoutes())
    app.router.add_get("/ws", websocket_handler(Echo))
    server = await each_mode_server(app)
    client = await connect(server)
    client.send_frame(Opcode.PING, b"are you there")
    frame = await client.read_frame()
    assert (frame.opcode, frame.payload) == (Opcode.PONG, b"are you there")
    client.send_text("still here")
    assert await client.read_text() == "still here"
    client.send_close(1000)
    assert await client.read_close() == Close(1000)
    await client.aclose()


@pytest.mark.parametrize("code", [1002, 1003, 1011, 3000, 4999])
async def test_peer_close_code_is_echoed_with_its_reason(
    each_mode_server: ModeServer, code: int, caplog: pytest.LogCaptureFixture
) -> None:
    """A peer's valid close code, whatever it is, is echoed with the peer's reason."""
    routes = WebSocketRoutes()

    @routes.websocket_route("/ws", caught_close_codes="all")
    async def view(ws: WebSocket) -> None:
        await ws.accept()
        async for _ in ws:
            pass
        ws.app[SEEN_KEY].append((ws.close_code, ws.close_reason))

    server = await each_mode_server(build_app(routes))
    client = await connect(server)
    client.send_close(code, b"see you")
    assert await client.read_close() == Close(code, "see you")
    await client.aclose()
    await eventually(lambda: server.app[SEEN_KEY] == [(code, "see you")])
    assert_quiet_ending(caplog)


class Strict:
    """A route parameter type whose constructor raises something else than ValueError."""

    def __init__(self, raw: str) -> None:
        raise LookupError(raw)


@pytest.mark.parametrize(
    ("path", "annotation"),
    [("/price/abc", decimal.Decimal), ("/strict/anything", Strict), ("/number/x1", int)],
    ids=["decimal", "lookup-error", "int"],
)
async def test_any_conversion_failure_is_http_400(
    each_mode_server: ModeServer,
    path: str,
    annotation: type,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A route converter that raises anything at all answers HTTP 400, without a traceback."""
    caplog.set_level(logging.DEBUG)
    routes = WebSocketRoutes()

    async def view(ws: WebSocket, value: Any) -> None:
        await ws.accept()

    view.__annotations__["value"] = annotation
    routes.add_websocket_route("/" + path.split("/")[1] + "/{value}", view)
    server = await each_mode_server(build_app(routes))
    assert server.port is not None
    host = f"127.0.0.1:{server.port}"
    response = await http_request(
        "127.0.0.1", server.port, upgrade_request(path, host, key=new_key())
    )
    assert response.status == 400
    assert_quiet_ending(caplog)


async def test_a_fault_logs_one_traceback(
    each_mode_server: ModeServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A view that raises after accept(): close 1011 and exactly one traceback in the log."""
    caplog.set_level(logging.DEBUG)
    routes = WebSocketRoutes()

    @routes.websocket_route("/ws")
    async def view(ws: WebSocket) -> None:
        await ws.accept()
        await ws.receive()
        raise RuntimeError("a bug in the view")

    server = await each_mode_server(build_app(routes))
    client = await connect(server)
    client.send_text("go")
    assert await client.read_close() == Close(1011, "Internal server error")
    await client.aclose()
    await eventually(lambda: any(record.exc_info for record in caplog.records))
    await asyncio.sleep(0.1)  # a second traceback would come right after the first
    record = assert_one_traceback(caplog)
    assert "a bug in the view" in str(record.exc_info[1])  # type: ignore[index]
