"""Server shutdown: every open connection gets 1001, on_disconnect runs, the process exits."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import aiohttp
from aiohttp import WSMsgType, web

import aioendpoints
from aioendpoints import WebSocket, WebSocketEndpoint, WebSocketRoutes
from tests.helpers import connect_when_up, free_port

ROOT = Path(__file__).resolve().parent.parent


async def test_runner_cleanup_closes_every_socket_with_1001() -> None:
    """runner.cleanup() sends 1001 to each open socket and runs each on_disconnect."""
    codes: list[int] = []
    routes = WebSocketRoutes()

    @routes.websocket_route("/listen")
    class Listener(WebSocketEndpoint):
        async def on_disconnect(self, ws: WebSocket, close_code: int) -> None:
            codes.append(close_code)

    app = web.Application()
    aioendpoints.setup(app)
    app.add_routes(routes)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    async with aiohttp.ClientSession() as session:
        sockets = [await session.ws_connect(f"http://127.0.0.1:{port}/listen") for _ in range(5)]
        receiving = [asyncio.ensure_future(ws.receive()) for ws in sockets]
        started = time.monotonic()
        await runner.cleanup()
        elapsed = time.monotonic() - started
        messages = await asyncio.gather(*receiving)
        for ws in sockets:
            await ws.close()
    assert [(message.type, message.data) for message in messages] == [(WSMsgType.CLOSE, 1001)] * 5
    assert codes == [1001] * 5
    assert elapsed < 2


async def test_sigint_to_python_m_aiohttp_web_closes_with_1001_and_exits() -> None:
    """Ctrl+C on `python -m aiohttp.web`: clients get 1001, on_disconnect runs, it exits."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "aiohttp.web",
        "-H",
        "127.0.0.1",
        "-P",
        str(port),
        "tests.shutdown_app:init_app",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        async with aiohttp.ClientSession() as session:
            ws = await connect_when_up(session, f"http://127.0.0.1:{port}/listen")
            assert process.stdout is not None
            await asyncio.wait_for(read_until(process.stdout, "connected"), 10)
            await ws.send_str("ping")
            assert await ws.receive_str() == "ping"
            started = time.monotonic()
            process.send_signal(signal.SIGINT)
            message = await asyncio.wait_for(ws.receive(), 10)
            await ws.close()
        assert (message.type, message.data) == (WSMsgType.CLOSE, 1001)
        output = await asyncio.wait_for(process.stdout.read(), 10)
        await asyncio.wait_for(process.wait(), 10)
        elapsed = time.monotonic() - started
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert "on_disconnect 1001" in output.decode()
    assert elapsed < 5


async def read_until(stream: asyncio.StreamReader, text: str) -> None:
    while text not in (await stream.readline()).decode():
        pass
