"""Mistakes in configuring groups are reported early, naming the bad value."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import aiohttp
import pytest
from aiohttp import web

import aioendpoints
from aioendpoints import Broadcast, WebSocket, WebSocketEndpoint, WebSocketRoutes
from aioendpoints.broadcast import backend_for_url, close_slow_member
from aioendpoints.broadcast.frames import server_frame

from .conftest import RECEIVE_TIMEOUT


@pytest.mark.parametrize("url", ["kafka://broker:9092", "127.0.0.1:6379"])
def test_unknown_backend_url_is_refused(url: str) -> None:
    """A URL that names no backend raises ValueError quoting it."""
    with pytest.raises(ValueError, match=url):
        backend_for_url(url)


def test_setup_refuses_a_bad_broadcast_url() -> None:
    """``setup(app, broadcast=...)`` checks the URL when it is called."""
    with pytest.raises(ValueError, match="nats://"):
        aioendpoints.setup(web.Application(), broadcast="nats://127.0.0.1")


def test_memory_backend_does_not_import_redis() -> None:
    """The default backend works without the Redis client being imported."""
    code = (
        "import sys; from aiohttp import web; import aioendpoints; "
        "aioendpoints.setup(web.Application()); assert 'redis' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_buffer_limit_must_be_a_size() -> None:
    """A negative buffer limit raises ValueError."""
    with pytest.raises(ValueError, match="-1"):
        Broadcast(buffer_limit=-1)


def test_slow_member_timeout_must_be_a_duration() -> None:
    """A negative slow-member timeout raises ValueError."""
    with pytest.raises(ValueError, match="-2"):
        Broadcast(slow_member_timeout=-2)


def test_backend_must_be_a_url_or_a_backend() -> None:
    """A backend that is neither a URL nor a BroadcastBackend raises TypeError naming it."""
    with pytest.raises(TypeError, match="42"):
        Broadcast(42)  # type: ignore[arg-type]


def test_slow_member_close_code_must_be_sendable() -> None:
    """``close_slow_member`` refuses a code that cannot go in a close frame."""
    with pytest.raises(ValueError, match="1006"):
        close_slow_member(1006)


def test_endpoint_groups_must_be_a_list_of_names() -> None:
    """``groups = "lobby"`` (a str, not a list) raises TypeError when the class is made."""
    with pytest.raises(TypeError, match="'lobby'"):

        class Lobby(WebSocketEndpoint):
            groups = "lobby"  # type: ignore[assignment]


async def test_join_before_accept_is_an_error(aiohttp_client: Any) -> None:
    """Joining a group before accepting raises WebSocketStateError."""
    errors: list[Exception] = []
    routes = WebSocketRoutes()

    @routes.websocket_route("/early")
    async def early(ws: WebSocket) -> None:
        try:
            await ws.join("lobby")
        except aioendpoints.WebSocketStateError as error:
            errors.append(error)
        await ws.accept()

    app = web.Application()
    aioendpoints.setup(app)
    app.add_routes(routes)
    client = await aiohttp_client(app)
    ws = await client.ws_connect("/early")
    assert (await ws.receive(timeout=RECEIVE_TIMEOUT)).type is aiohttp.WSMsgType.CLOSE
    assert "accept()" in str(errors[0])


async def test_groups_without_setup_are_an_error(aiohttp_client: Any) -> None:
    """Joining in an app without ``aioendpoints.setup()`` says to call it (1011 for the view)."""
    routes = WebSocketRoutes()

    @routes.websocket_route("/nosetup")
    async def no_setup(ws: WebSocket) -> None:
        await ws.accept()
        await ws.join("lobby")

    app = web.Application()
    app.add_routes(routes)
    client = await aiohttp_client(app)
    ws = await client.ws_connect("/nosetup")
    closing = await ws.receive(timeout=RECEIVE_TIMEOUT)
    assert closing.data == 1011
    with pytest.raises(RuntimeError, match=r"aioendpoints\.setup\(app\)"):
        aioendpoints.group_members(app, "lobby")


@pytest.mark.parametrize(
    ("length", "header"),
    [(125, b"\x81\x7d"), (126, b"\x81\x7e\x00\x7e"), (65536, b"\x81\x7f" + (65536).to_bytes(8))],
    ids=["7-bit", "16-bit", "64-bit"],
)
def test_frames_carry_their_length(length: int, header: bytes) -> None:
    """Shared frames use RFC 6455's three length encodings, unmasked, with FIN set."""
    frame = server_frame(1, b"x" * length)
    assert frame[: len(header)] == header
    assert len(frame) == len(header) + length
