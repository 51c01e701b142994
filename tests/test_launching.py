"""Launching with ``python -m aiohttp.web``: the demo's log is a normal log."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from tests.chat_server import ChatServer, free_port, server_errors


async def test_the_demo_logs_at_info_under_python_m_aiohttp_web(tmp_path: Path) -> None:
    """No DEBUG lines (asyncio's "Using selector"), and the access log of the handshake."""
    server = ChatServer(free_port(), tmp_path / "server.log")
    server.start()
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(f"{server.url}echo") as ws,
        ):
            await ws.send_str("hello")
            assert await ws.receive_str(timeout=10) == "You said: hello"
    finally:
        server.stop()
    lines = server.log().splitlines()
    assert not [line for line in lines if line.startswith("DEBUG:")], lines
    assert any(line.startswith("INFO:aiohttp.access:") and "GET /echo" in line for line in lines)
    assert not server_errors(server.log())
