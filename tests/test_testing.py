"""aioendpoints.testing: the WebSocket test client, its assertions and the pytest fixture."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

import aioendpoints
from aioendpoints import CONNECTIONS_KEY, WebSocket, WebSocketRoutes
from aioendpoints.testing import WebSocketConnect, connect


def app_with(view: Any, path: str = "/ws", **options: Any) -> web.Application:
    """An application serving ``view`` at ``path``, with aioendpoints set up."""
    routes = WebSocketRoutes()
    routes.add_websocket_route(path, view, **options)
    app = web.Application()
    aioendpoints.setup(app)
    app.add_routes(routes)
    return app


async def echo_forever(ws: WebSocket) -> None:
    """Echo every text message until the client closes."""
    await ws.accept()
    async for message in ws:
        await ws.send(message)


async def silent(ws: WebSocket) -> None:
    """Accept, then never send anything."""
    await ws.accept()
    await asyncio.sleep(30)


async def test_expect_text_passes_on_the_same_text(websocket_connect: WebSocketConnect) -> None:
    """expect_text() returns quietly when the next message is the expected text."""
    ws = await websocket_connect(app_with(echo_forever), "/ws")
    await ws.send_text("ping")
    await ws.expect_text("ping")


async def test_expect_text_fails_naming_both_texts(websocket_connect: WebSocketConnect) -> None:
    """expect_text() raises AssertionError showing what was expected and what came."""
    ws = await websocket_connect(app_with(echo_forever), "/ws")
    await ws.send_text("ping")
    with pytest.raises(AssertionError, match=r"expected 'pong' from /ws, got 'ping'"):
        await ws.expect_text("pong")


async def test_expect_json_compares_decoded_values(websocket_connect: WebSocketConnect) -> None:
    """expect_json() compares the decoded JSON, not the text."""
    ws = await websocket_connect(app_with(echo_forever, value_type="json"), "/ws")
    await ws.send_json({"b": [1, 2], "a": None})
    await ws.expect_json({"a": None, "b": [1, 2]})
    await ws.send_json({"a": 1})
    with pytest.raises(AssertionError, match=r"expected \{'a': 2\} from /ws, got \{'a': 1\}"):
        await ws.expect_json({"a": 2})


async def test_expect_bytes_checks_binary_frames(websocket_connect: WebSocketConnect) -> None:
    """expect_bytes() takes a binary frame; a text frame fails it."""
    ws = await websocket_connect(app_with(echo_forever, value_type="bytes"), "/ws")
    await ws.send_bytes(b"\x00\xff")
    await ws.expect_bytes(b"\x00\xff")

    text_ws = await websocket_connect(app_with(echo_forever), "/ws")
    await text_ws.send_text("words")
    with pytest.raises(AssertionError, match=r"expected a binary message from /ws, got a text"):
        await text_ws.expect_bytes(b"words")


async def test_receive_fails_instead_of_hanging(websocket_connect: WebSocketConnect) -> None:
    """A receive with nothing coming fails after the timeout rather than hanging the test."""
    ws = await websocket_connect(app_with(silent), "/ws", timeout=0.2)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(AssertionError, match=r"no message from /ws within 0.2 s"):
        await ws.receive_text()
    assert 0.15 < loop.time() - started < 2


async def test_a_slow_handshake_fails_after_the_timeout(
    websocket_connect: WebSocketConnect,
) -> None:
    """A server that never completes the handshake fails the test after the timeout."""

    async def never_accepts(ws: WebSocket) -> None:
        await asyncio.sleep(30)

    with pytest.raises(AssertionError, match=r"WebSocket handshake to /ws took more than 0.2 s"):
        await websocket_connect(app_with(never_accepts), "/ws", timeout=0.2)


async def test_expect_close_checks_code_and_reason(websocket_connect: WebSocketConnect) -> None:
    """expect_close() returns the code and reason, and fails on a different code or reason."""

    async def closes(ws: WebSocket) -> None:
        await ws.accept()
        await ws.close(4000, "done here")

    ws = await websocket_connect(app_with(closes), "/ws")
    assert await ws.expect_close(4000, "done here") == (4000, "done here")
    assert ws.close_code == 4000

    other = await websocket_connect(app_with(closes), "/ws")
    with pytest.raises(AssertionError, match=r"expected close code 1000 from /ws, got 4000"):
        await other.expect_close(1000)


async def test_expect_close_fails_on_a_message(websocket_connect: WebSocketConnect) -> None:
    """expect_close() fails when a message comes instead of the close."""
    ws = await websocket_connect(app_with(echo_forever), "/ws")
    await ws.send_text("still open")
    with pytest.raises(AssertionError, match=r"expected a close from /ws, got a text message"):
        await ws.expect_close()


async def test_a_dropped_connection_closes_with_1006(websocket_connect: WebSocketConnect) -> None:
    """A server that drops the connection without a close frame counts as code 1006."""

    async def drops(ws: WebSocket) -> None:
        await ws.accept()
        assert ws.request.transport is not None
        ws.request.transport.close()
        await asyncio.sleep(30)

    ws = await websocket_connect(app_with(drops), "/ws")
    code, _ = await ws.expect_close()
    assert code == 1006


async def test_an_app_is_served_once_for_many_connections(
    websocket_connect: WebSocketConnect,
) -> None:
    """Connections opened to the same application reach the same server."""
    app = app_with(echo_forever)
    first = await websocket_connect(app, "/ws")
    second = await websocket_connect(app, "/ws")
    for ws in (first, second):
        await ws.send_text("hi")
        await ws.expect_text("hi")
    assert len(app[CONNECTIONS_KEY]) == 2


async def test_connect_takes_an_aiohttp_client(aiohttp_client: Any) -> None:
    """connect() works with a client from pytest-aiohttp's aiohttp_client."""
    client = await aiohttp_client(app_with(echo_forever))
    async with await connect(client, "/ws") as ws:
        await ws.send_text("hello")
        await ws.expect_text("hello")
    assert ws.close_code == 1000


async def test_the_fixture_takes_an_aiohttp_client(
    aiohttp_client: Any, websocket_connect: WebSocketConnect
) -> None:
    """The fixture also takes a client, for apps that need HTTP requests too."""
    client = await aiohttp_client(app_with(echo_forever))
    ws = await websocket_connect(client, "/ws")
    await ws.send_text("both")
    await ws.expect_text("both")


async def test_websocket_options_reach_the_handshake(websocket_connect: WebSocketConnect) -> None:
    """Options such as protocols go to aiohttp's ws_connect()."""

    async def speaks_chat(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send(ws.subprotocol or "none")

    ws = await websocket_connect(
        app_with(speaks_chat, protocols=["chat"]), "/ws", protocols=["chat"]
    )
    await ws.expect_text("chat")


def test_the_test_helpers_do_not_import_pytest(tmp_path: Path) -> None:
    """aioendpoints.testing works in a program without pytest: connect() to a test server."""
    script = tmp_path / "outside_pytest.py"
    script.write_text(
        textwrap.dedent(
            """
            import asyncio, sys

            from aiohttp import web
            from aiohttp.test_utils import TestClient, TestServer

            import aioendpoints
            from aioendpoints import WebSocket, WebSocketRoutes
            from aioendpoints.testing import connect

            routes = WebSocketRoutes()

            @routes.websocket_route("/echo")
            async def echo(ws: WebSocket) -> None:
                await ws.accept()
                await ws.send(await ws.receive())

            async def main() -> None:
                app = web.Application()
                aioendpoints.setup(app)
                app.add_routes(routes)
                async with TestClient(TestServer(app)) as client:
                    async with await connect(client, "/echo") as ws:
                        await ws.send_text("hi")
                        await ws.expect_text("hi")
                        await ws.expect_close(1000)
                assert "pytest" not in sys.modules, "pytest was imported"
                print("ok")

            asyncio.run(main())
            """
        )
    )
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "PYTHONPATH": str(Path(aioendpoints.__file__).parent.parent)},
    )
    assert (done.returncode, done.stdout.strip()) == (0, "ok"), done.stderr


def test_the_fixture_is_still_importable_from_aioendpoints_testing() -> None:
    """``from aioendpoints.testing import websocket_connect`` keeps working."""
    from aioendpoints import pytest_plugin, testing

    assert testing.websocket_connect is pytest_plugin.websocket_connect
