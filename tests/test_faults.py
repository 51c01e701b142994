"""Faults: peers that vanish, reset, stall or misbehave, hooks that raise, a busy shutdown.

Each time ``on_disconnect`` runs exactly once (never for a connection that was not
accepted), and nothing is left running: tasks and file descriptors return to the
baseline taken before the first client connected.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

import aioendpoints
from aioendpoints import WebSocket, WebSocketDisconnect, websocket_handler
from tests.echo_app import DISCONNECTS_KEY, CountedEndpoint
from tests.rawws import (
    Close,
    Opcode,
    RawWebSocket,
    build_frame,
    http_request,
    new_key,
    upgrade_request,
)
from tests.resources import Baseline, settle

ServerFactory = Callable[..., Awaitable[TestServer]]


class Echo(CountedEndpoint):
    encoding = "text"

    async def on_receive(self, ws: WebSocket, data: Any) -> None:
        await ws.send(data)


def build_app(endpoint: type[CountedEndpoint], **options: Any) -> web.Application:
    app = web.Application()
    aioendpoints.setup(app)
    app[DISCONNECTS_KEY] = []
    app.router.add_get("/ws", websocket_handler(endpoint, **options))
    return app


async def serve(
    each_mode_server: ServerFactory, endpoint: type[CountedEndpoint], **options: Any
) -> TestServer:
    """Serve ``endpoint`` at ``/ws`` on a free loopback port."""
    return await each_mode_server(build_app(endpoint, **options))


async def connect(server: TestServer, **options: Any) -> RawWebSocket:
    assert server.port is not None
    return await RawWebSocket.connect("127.0.0.1", server.port, "/ws", **options)


def disconnects(server: TestServer) -> list[tuple[str, int]]:
    return server.app[DISCONNECTS_KEY]


async def disconnected_once(server: TestServer, code: int, within: float = 5.0) -> None:
    """Wait for one ``on_disconnect`` call, then check it was the only one, with ``code``."""
    await settle(lambda: len(disconnects(server)) >= 1, within)
    await asyncio.sleep(0.1)  # a second, wrong call would come right after the first
    assert [code for _, code in disconnects(server)] == [code]


async def test_peer_sends_half_a_frame_then_vanishes(each_mode_server: ServerFactory) -> None:
    """Half a frame and a FIN: on_disconnect(1006) once, nothing left running."""
    server = await serve(each_mode_server, Echo)
    baseline = Baseline.take()
    client = await connect(server)
    client.send_raw(build_frame(Opcode.TEXT, b"x" * 100)[:40])
    await client.aclose()
    await disconnected_once(server, 1006)
    assert await baseline.restored() == baseline


async def test_tcp_reset_mid_message(each_mode_server: ServerFactory) -> None:
    """A TCP reset in the middle of a message: on_disconnect(1006) once, nothing left."""
    server = await serve(each_mode_server, Echo)
    baseline = Baseline.take()
    client = await connect(server)
    client.send_raw(build_frame(Opcode.TEXT, b"y" * 10_000)[:5_000])
    await asyncio.sleep(0.05)
    client.reset()
    await disconnected_once(server, 1006)
    assert await baseline.restored() == baseline


async def test_peer_that_ignores_pings_is_closed_by_heartbeat(
    each_mode_server: ServerFactory,
) -> None:
    """A peer that never answers pings is dropped with 1006.

    How soon (1 to 1.5 heartbeats) is measured by the bench's keepalive scenario, not here.
    """
    heartbeat = 0.4
    server = await serve(each_mode_server, Echo, heartbeat=heartbeat)
    baseline = Baseline.take()
    client = await connect(server)
    # The raw client reads nothing and so answers no ping.
    await settle(lambda: bool(disconnects(server)), within=10 * heartbeat)
    await disconnected_once(server, 1006)
    assert await client.closed_by_server(within=2.0)
    await client.aclose()
    assert await baseline.restored() == baseline


class CloseOnBye(CountedEndpoint):
    encoding = "text"

    async def on_receive(self, ws: WebSocket, data: Any) -> None:
        await ws.close(1000, "bye")


async def test_peer_that_ignores_our_close_frame_is_dropped(
    each_mode_server: ServerFactory,
) -> None:
    """Our close frame unanswered: the TCP connection is dropped after close_timeout."""
    server = await serve(each_mode_server, CloseOnBye, close_timeout=0.3)
    baseline = Baseline.take()
    client = await connect(server)
    client.send_text("bye")
    assert await client.read_close() == Close(1000, "bye")
    # No close frame back: the server must give up on the handshake and hang up.
    assert await client.closed_by_server(within=3.0)
    await client.aclose()
    await disconnected_once(server, 1000)
    assert await baseline.restored() == baseline


# A hook that raises ---------------------------------------------------------------------


class RaiseInConnectBeforeAccept(CountedEndpoint):
    async def on_connect(self, ws: WebSocket) -> None:
        raise RuntimeError("on_connect failed before accept()")


class RaiseInConnectAfterAccept(CountedEndpoint):
    async def on_connect(self, ws: WebSocket) -> None:
        await ws.accept()
        raise RuntimeError("on_connect failed after accept()")


class RaiseInReceive(CountedEndpoint):
    async def on_receive(self, ws: WebSocket, data: Any) -> None:
        raise RuntimeError("on_receive failed")


class RaiseInDisconnect(CountedEndpoint):
    async def on_disconnect(self, ws: WebSocket, close_code: int) -> None:
        await super().on_disconnect(ws, close_code)
        raise RuntimeError("on_disconnect failed")


async def test_on_connect_raising_before_accept(
    each_mode_server: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """on_connect raising before accept: HTTP 500, no on_disconnect, nothing left running."""
    server = await serve(each_mode_server, RaiseInConnectBeforeAccept)
    baseline = Baseline.take()
    assert server.port is not None
    request = upgrade_request("/ws", f"127.0.0.1:{server.port}", key=new_key())
    with caplog.at_level(logging.ERROR, logger="aioendpoints"):
        response = await http_request("127.0.0.1", server.port, request)
    assert response.status == 500
    assert await baseline.restored() == baseline
    assert disconnects(server) == []
    assert len([record for record in caplog.records if record.exc_info]) == 1


async def test_on_connect_raising_after_accept(
    each_mode_server: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """on_connect raising after accept: close 1011, on_disconnect(1011) once."""
    server = await serve(each_mode_server, RaiseInConnectAfterAccept)
    baseline = Baseline.take()
    with caplog.at_level(logging.ERROR, logger="aioendpoints"):
        client = await connect(server)
        assert (await client.read_close()).code == 1011
        client.send_close(1011)
        await client.aclose()
        await disconnected_once(server, 1011)
    assert await baseline.restored() == baseline
    assert len([record for record in caplog.records if record.exc_info]) == 1


async def test_on_receive_raising(
    each_mode_server: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """on_receive raising: close 1011, on_disconnect(1011) once."""
    server = await serve(each_mode_server, RaiseInReceive)
    baseline = Baseline.take()
    with caplog.at_level(logging.ERROR, logger="aioendpoints"):
        client = await connect(server)
        client.send_text("boom")
        assert (await client.read_close()).code == 1011
        client.send_close(1011)
        await client.aclose()
        await disconnected_once(server, 1011)
    assert await baseline.restored() == baseline
    assert len([record for record in caplog.records if record.exc_info]) == 1


async def test_on_disconnect_raising(
    each_mode_server: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """on_disconnect raising: it ran once, the error is logged once, nothing left running."""
    server = await serve(each_mode_server, RaiseInDisconnect)
    baseline = Baseline.take()
    with caplog.at_level(logging.ERROR, logger="aioendpoints"):
        client = await connect(server)
        client.send_close(1000)
        assert (await client.read_close()).code == 1000
        await client.aclose()
        await disconnected_once(server, 1000)
        assert await baseline.restored() == baseline
    failures = [record for record in caplog.records if record.exc_info]
    assert len(failures) == 1
    assert "on_disconnect failed" in str(failures[0].exc_info[1])  # type: ignore[index]


# A slow consumer ------------------------------------------------------------------------


class Firehose(CountedEndpoint):
    """Sends as fast as it can until the connection ends."""

    async def on_connect(self, ws: WebSocket) -> None:
        await ws.accept()
        chunk = "z" * 65536
        try:
            while True:
                await ws.send_text(chunk)
        except WebSocketDisconnect:
            return


async def test_slow_consumer_is_closed_instead_of_blocking_its_sender(
    each_mode_server: ServerFactory,
) -> None:
    """A client that reads nothing is closed with 1008 after send_timeout; the sender ends."""
    server = await serve(each_mode_server, Firehose, send_timeout=0.5)
    baseline = Baseline.take()
    assert server.port is not None
    sock = socket.socket()
    # A small receive window, so the server's writes back up quickly.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", server.port))
    _, writer = await asyncio.open_connection(sock=sock)
    writer.write(upgrade_request("/ws", f"127.0.0.1:{server.port}", key=new_key()))
    await disconnected_once(server, 1008, within=10.0)
    writer.close()
    assert await baseline.restored() == baseline


# Shutdown -------------------------------------------------------------------------------


async def test_shutdown_with_200_open_sockets() -> None:
    """runner.cleanup() with 200 open sockets: 1001 to each, 200 on_disconnect, fast."""
    baseline = Baseline.take()
    app = build_app(Echo)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    clients = await asyncio.gather(
        *(RawWebSocket.connect("127.0.0.1", port, "/ws") for _ in range(200))
    )
    # Every connection is served: an echo proves the view runs for each.
    for client in clients:
        client.send_text("ready?")
    assert {await client.read_text() for client in clients} == {"ready?"}
    started = time.monotonic()
    closes = asyncio.gather(*(client.read_close() for client in clients))
    await runner.cleanup()
    elapsed = time.monotonic() - started
    assert [close.code for close in await closes] == [1001] * 200
    for client in clients:
        await client.aclose()
    assert elapsed < 5.0
    assert [code for _, code in app[DISCONNECTS_KEY]] == [1001] * 200
    assert await baseline.restored() == baseline
