"""Half-sent handshakes: aiohttp's ``keepalive_timeout`` closes them; open WebSockets stay.

aiohttp starts a connection's keep-alive timer when the connection is made, and closes it
when no complete request has arrived by then; bytes trickling in do not extend it. An
upgraded WebSocket is a request in progress, which the timer leaves alone. So
``keepalive_timeout`` is the handshake timeout: 75 s under ``web.run_app`` and
``python -m aiohttp.web``, 3630 s under a bare ``web.AppRunner``, gunicorn's ``--keep-alive``
(2 s by default) under its aiohttp worker. See docs/topics/security.rst.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect

from aiohttp import web

from aioendpoints import WebSocket, WebSocketRoutes
from tests.conftest import ModeServer
from tests.helpers import make_app
from tests.rawws import RawWebSocket, new_key, upgrade_request
from tests.resources import Baseline, raise_open_file_limit

HALF_SENT = 200


def echo_app() -> web.Application:
    routes = WebSocketRoutes()

    @routes.websocket_route("/ws")
    async def echo(ws: WebSocket) -> None:
        await ws.accept()
        async for message in ws:
            await ws.send(message)

    return make_app(routes)


async def test_half_sent_upgrade_requests_are_closed(each_mode_server: ModeServer) -> None:
    """200 upgrade requests cut in the middle are all closed after keepalive_timeout."""
    raise_open_file_limit(4 * HALF_SENT + 256)
    server = await each_mode_server(echo_app(), keepalive_timeout=0.5)
    assert server.port is not None
    baseline = Baseline.take()
    request = upgrade_request("/ws", f"127.0.0.1:{server.port}", key=new_key())
    streams = []
    try:
        for _ in range(HALF_SENT):
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(request[: len(request) // 2])
            streams.append((reader, writer))
        # Every one of them is closed by the server, and none got a response.
        answers = await asyncio.wait_for(
            asyncio.gather(*(reader.read() for reader, _ in streams)), timeout=30
        )
        assert answers == [b""] * HALF_SENT
    finally:
        for _, writer in streams:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
    assert await baseline.restored() == baseline


async def test_an_open_websocket_outlives_keepalive_timeout(each_mode_server: ModeServer) -> None:
    """The handshake timeout does not touch an upgraded connection, however quiet."""
    server = await each_mode_server(echo_app(), keepalive_timeout=0.2)
    assert server.port is not None
    client = await RawWebSocket.connect("127.0.0.1", server.port, "/ws")
    await asyncio.sleep(1.0)  # five keepalive timeouts of silence
    client.send_text("still here")
    assert await client.read_text() == "still here"
    client.send_close(1000)
    await client.read_close()
    await client.aclose()


async def test_a_trickling_handshake_is_not_extended(each_mode_server: ModeServer) -> None:
    """A client that sends a byte now and then is closed while it is still trickling."""
    server = await each_mode_server(echo_app(), keepalive_timeout=0.5)
    assert server.port is not None
    request = upgrade_request("/ws", f"127.0.0.1:{server.port}", key=new_key())
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    closed = asyncio.ensure_future(reader.read())
    try:
        # About 10 s of trickling, never the blank line that ends the headers.
        for byte in request[:-4]:
            if closed.done():
                break
            writer.write(bytes([byte]))
            await asyncio.sleep(0.05)
        assert closed.done(), "the server waited for the whole trickle"
        assert closed.result() == b""
    finally:
        closed.cancel()
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


def test_the_documented_defaults_are_aiohttps() -> None:
    """run_app closes half-sent handshakes after 75 s, a bare AppRunner after 3630 s."""
    assert inspect.signature(web.run_app).parameters["keepalive_timeout"].default == 75.0
    handler_default = inspect.signature(web.RequestHandler).parameters["keepalive_timeout"]
    assert handler_default.default == 3630
