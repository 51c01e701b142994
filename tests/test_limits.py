"""Limits: heartbeat, idle and authentication deadlines, slow readers, rates, connection caps."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import socket
import time
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType, WSServerHandshakeError, web

import aioendpoints
from aioendpoints import WebSocket, WebSocketDisconnect, WebSocketEndpoint, WebSocketRoutes
from aioendpoints.limits import DEFAULT_HEARTBEAT, DEFAULT_SEND_TIMEOUT, RateLimit
from aioendpoints.options import RouteOptions
from tests.rawws import Close, Opcode, RawWebSocket, build_frame
from tests.resources import Baseline


class Ended:
    """Collects how connections ended: on_disconnect's codes and when they came."""

    def __init__(self) -> None:
        self.codes: list[int] = []
        self.times: list[float] = []
        self.event = asyncio.Event()

    def add(self, code: int) -> None:
        self.codes.append(code)
        self.times.append(time.monotonic())
        self.event.set()

    async def first(self) -> int:
        await asyncio.wait_for(self.event.wait(), 5)
        return self.codes[0]


def endpoint_app(ended: Ended, **route_options: Any) -> web.Application:
    routes = WebSocketRoutes()

    @routes.websocket_route("/ws", **route_options)
    class Echo(WebSocketEndpoint):
        async def on_receive(self, ws: WebSocket, data: Any) -> None:
            await ws.send(data)

        async def on_disconnect(self, ws: WebSocket, close_code: int) -> None:
            ended.add(close_code)

    app = web.Application()
    aioendpoints.setup(app)
    app.add_routes(routes)
    return app


def test_defaults_are_the_documented_ones() -> None:
    """Routes ping every 20 s and give a slow reader 10 s; the other limits are off."""
    options = RouteOptions.from_options({})
    assert options.heartbeat == DEFAULT_HEARTBEAT == 20.0
    assert options.send_timeout == DEFAULT_SEND_TIMEOUT == 10.0
    assert options.write_buffer_limit == 256 * 1024
    assert (options.idle_timeout, options.auth_timeout, options.rate_limit) == (None, None, None)
    assert (options.max_connections, options.max_connections_per_client) == (None, None)


async def test_heartbeat_closes_a_peer_that_ignores_pings(each_mode_client: Any) -> None:
    """A peer that never answers pings is dropped with 1006.

    The bound (1.5 intervals of silence) is checked without a clock in test_keepalive.py.
    """
    ended = Ended()
    client = await each_mode_client(endpoint_app(ended, heartbeat=0.4))
    ws = await client.ws_connect("/ws", autoping=False)
    assert await ended.first() == 1006
    await ws.close()


async def test_heartbeat_keeps_an_answering_peer(each_mode_client: Any) -> None:
    """A peer that answers pings stays connected across many intervals."""
    ended = Ended()
    client = await each_mode_client(endpoint_app(ended, heartbeat=0.2))
    async with client.ws_connect("/ws") as ws:
        receiving = asyncio.ensure_future(ws.receive())
        await asyncio.sleep(0.8)
        assert not receiving.done()
        await ws.send_str("still here")
        assert (await receiving).data == "still here"
    assert await ended.first() == 1000


async def test_idle_timeout_closes_with_1001_and_no_traceback(
    each_mode_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A peer silent for idle_timeout gets close 1001 "Idle timeout"; nothing is logged."""
    ended = Ended()
    client = await each_mode_client(endpoint_app(ended, idle_timeout=0.2))
    with caplog.at_level(logging.WARNING, logger="aioendpoints"):
        async with client.ws_connect("/ws") as ws:
            message = await ws.receive(timeout=5)
    assert (message.type, message.data, message.extra) == (WSMsgType.CLOSE, 1001, "Idle timeout")
    assert await ended.first() == 1001
    assert caplog.records == []


async def test_idle_timeout_restarts_with_each_message(each_mode_client: Any) -> None:
    """Messages keep a connection under idle_timeout open."""
    ended = Ended()
    client = await each_mode_client(endpoint_app(ended, idle_timeout=0.5))
    async with client.ws_connect("/ws") as ws:
        for _ in range(8):
            await asyncio.sleep(0.1)
            await ws.send_str("tick")
            assert await ws.receive_str() == "tick"
    assert await ended.first() == 1000


@pytest.mark.parametrize("control", ["ping", "pong"])
async def test_idle_timeout_counts_messages_not_control_frames(
    each_mode_server: Any, control: str
) -> None:
    """Pings or unsolicited pongs every 50 ms do not keep an idle connection open."""
    ended = Ended()
    server = await each_mode_server(endpoint_app(ended, idle_timeout=0.3, heartbeat=None))
    client = await RawWebSocket.connect("127.0.0.1", server.port, "/ws")
    opcode = Opcode.PING if control == "ping" else Opcode.PONG
    closing = asyncio.ensure_future(client.read_close(within=10))
    for _ in range(200):  # 10 s at most
        if closing.done():
            break
        client.send_frame(opcode, b"alive")
        await asyncio.sleep(0.05)
    assert await closing == Close(1001, "Idle timeout")
    client.send_close(1001)
    assert await ended.first() == 1001
    await client.aclose()


async def test_ping_flood_that_reads_nothing_is_dropped(each_mode_server: Any) -> None:
    """A peer that floods pings and reads no pong is dropped: task and fds released.

    Once the pongs fill its buffer, answering one more waits at most send_timeout; the
    close frame queued behind them waits at most close_timeout before the socket is aborted.
    """
    ended = Ended()
    app = endpoint_app(ended, send_timeout=0.5, close_timeout=0.5, write_buffer_limit=16 * 1024)
    server = await each_mode_server(app)
    baseline = Baseline.take()
    client = await RawWebSocket.connect("127.0.0.1", server.port, "/ws")
    batch = build_frame(Opcode.PING, b"p" * 125) * 100
    for _ in range(2000):  # 25 MB of pings at most
        if ended.codes:
            break
        client.send_raw(batch)
        # The server may read no more: stuck on a pong, or gone.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(client.writer.drain(), 0.05)
    await asyncio.wait_for(ended.event.wait(), 10)
    assert ended.codes == [1008]
    client.reset()
    assert await baseline.restored() == baseline


def test_idle_timeout_and_receive_timeout_are_exclusive() -> None:
    """Setting both timeouts is refused at registration."""
    with pytest.raises(ValueError, match="not both"):
        RouteOptions.from_options({"idle_timeout": 1, "receive_timeout": 1})


def auth_app(ended: Ended, auth_timeout: float) -> web.Application:
    routes = WebSocketRoutes()

    @routes.websocket_route("/ws", auth_timeout=auth_timeout)
    class Authenticated(WebSocketEndpoint):
        encoding = "json"

        async def on_receive(self, ws: WebSocket, data: Any) -> None:
            if data.get("token") == "secret":
                ws.authenticated()
                await ws.send({"welcome": True})
            else:
                await ws.send({"echo": data})

        async def on_disconnect(self, ws: WebSocket, close_code: int) -> None:
            ended.add(close_code)

    app = web.Application()
    app.add_routes(routes)
    return app


async def test_missed_auth_deadline_closes_with_1008(
    each_mode_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A connection not authenticated within auth_timeout is closed with 1008 and a reason."""
    ended = Ended()
    client = await each_mode_client(auth_app(ended, 0.5))
    with caplog.at_level(logging.WARNING, logger="aioendpoints"):
        async with client.ws_connect("/ws") as ws:
            await ws.send_json({"hello": 1})
            assert await ws.receive_json() == {"echo": {"hello": 1}}
            message = await ws.receive(timeout=5)
    assert (message.type, message.data) == (WSMsgType.CLOSE, 1008)
    assert message.extra == "Authentication timeout"
    assert await ended.first() == 1008
    assert caplog.records == []


async def test_authenticated_connection_outlives_the_deadline(each_mode_client: Any) -> None:
    """A view that calls ws.authenticated() in time keeps its connection."""
    ended = Ended()
    client = await each_mode_client(auth_app(ended, 0.2))
    async with client.ws_connect("/ws") as ws:
        await ws.send_json({"token": "secret"})
        assert await ws.receive_json() == {"welcome": True}
        await asyncio.sleep(0.4)
        await ws.send_json({"after": "deadline"})
        assert await ws.receive_json() == {"echo": {"after": "deadline"}}
    assert await ended.first() == 1000


async def test_rate_limit_closes_with_1008(each_mode_client: Any) -> None:
    """A peer sending faster than rate_limit is closed with 1008 "Rate limit exceeded"."""
    ended = Ended()
    client = await each_mode_client(endpoint_app(ended, rate_limit=RateLimit(1, 3)))
    async with client.ws_connect("/ws") as ws:
        for number in range(10):
            await ws.send_str(str(number))
        replies = []
        while (message := await ws.receive(timeout=5)).type is WSMsgType.TEXT:
            replies.append(message.data)
    assert replies == ["0", "1", "2"]
    assert (message.type, message.data, message.extra) == (
        WSMsgType.CLOSE,
        1008,
        "Rate limit exceeded",
    )
    assert await ended.first() == 1008


async def test_rate_limit_lets_a_steady_peer_through(each_mode_client: Any) -> None:
    """Messages within the rate, after the burst, all pass."""
    ended = Ended()
    client = await each_mode_client(endpoint_app(ended, rate_limit=(20, 2)))
    async with client.ws_connect("/ws") as ws:
        for number in range(8):
            await ws.send_str(str(number))
            assert await ws.receive_str() == str(number)
            await asyncio.sleep(0.06)
    assert await ended.first() == 1000


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("rate_limit", (0, 1)),
        ("rate_limit", (5, 0)),
        ("send_timeout", -1),
        ("write_buffer_limit", 0),
        ("max_connections", 0),
        ("auth_timeout", "soon"),
    ],
)
def test_bad_limit_is_refused_at_registration(option: str, value: Any) -> None:
    """A bad limit raises ValueError naming the option when the route is declared."""
    with pytest.raises(ValueError, match=option):
        RouteOptions.from_options({option: value})  # type: ignore[misc]


async def open_slow_reader(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A raw WebSocket client that completes the handshake and then never reads."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 101")
    return reader, writer


def flood_app(outcome: asyncio.Future[tuple[int, int, float]], **options: Any) -> web.Application:
    routes = WebSocketRoutes()

    @routes.websocket_route("/ws", value_type="bytes", **options)
    async def flood(ws: WebSocket) -> None:
        await ws.accept()
        chunk = b"x" * 65536
        sent = 0
        started = time.monotonic()
        try:
            while sent < 4000:  # 256 MiB at most: far more than any socket buffers.
                await ws.send(chunk)
                sent += 1
        except WebSocketDisconnect as disconnect:
            outcome.set_result((disconnect.code, sent, time.monotonic() - started))
            raise
        outcome.set_result((0, sent, time.monotonic() - started))

    app = web.Application()
    app.add_routes(routes)
    return app


async def test_slow_reader_is_closed_instead_of_blocking_the_sender(each_mode_server: Any) -> None:
    """A send that the reader does not make room for within send_timeout closes with 1008."""
    outcome: asyncio.Future[tuple[int, int, float]] = asyncio.get_running_loop().create_future()
    server = await each_mode_server(
        flood_app(outcome, send_timeout=0.3, write_buffer_limit=64 * 1024)
    )
    _, writer = await open_slow_reader(server.port)
    try:
        code, sent, elapsed = await asyncio.wait_for(outcome, 10)
    finally:
        writer.close()
    assert code == 1008
    assert sent < 4000
    assert elapsed < 5


async def test_fast_reader_is_not_closed_by_the_send_timeout(each_mode_server: Any) -> None:
    """A reader that keeps up gets every message despite a short send_timeout."""
    outcome: asyncio.Future[tuple[int, int, float]] = asyncio.get_running_loop().create_future()
    server = await each_mode_server(
        flood_app(outcome, send_timeout=0.3, write_buffer_limit=64 * 1024)
    )
    received = 0
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(f"http://127.0.0.1:{server.port}/ws") as ws,
    ):
        async for message in ws:
            assert message.type is WSMsgType.BINARY
            received += 1
    code, sent, _ = await asyncio.wait_for(outcome, 30)
    assert (code, sent, received) == (0, 4000, 4000)


def held_app(release: asyncio.Event, **options: Any) -> web.Application:
    routes = WebSocketRoutes()

    @routes.websocket_route("/ws", **options)
    async def held(ws: WebSocket) -> None:
        await ws.accept()
        await ws.receive()

    app = web.Application()
    app.add_routes(routes)
    return app


async def connect_eventually(session: aiohttp.ClientSession, url: str) -> Any:
    """Connect, retrying while the server has not yet counted a closed connection out."""
    for _ in range(50):
        try:
            return await session.ws_connect(url)
        except WSServerHandshakeError as error:
            if error.status != 503:
                raise
            await asyncio.sleep(0.02)
    raise AssertionError("the cap was never released")


async def test_max_connections_refuses_with_503_before_upgrade(each_mode_server: Any) -> None:
    """Over max_connections the handshake gets HTTP 503; a closed slot is free again."""
    server = await each_mode_server(held_app(asyncio.Event(), max_connections=2))
    url = f"http://127.0.0.1:{server.port}/ws"
    async with aiohttp.ClientSession() as session:
        first = await session.ws_connect(url)
        second = await session.ws_connect(url)
        with pytest.raises(WSServerHandshakeError) as refused:
            await session.ws_connect(url)
        assert refused.value.status == 503
        await first.close()
        third = await connect_eventually(session, url)
        await second.close()
        await third.close()


async def test_max_connections_per_client_counts_each_address(each_mode_server: Any) -> None:
    """max_connections_per_client caps one address and leaves the others alone."""
    server = await each_mode_server(held_app(asyncio.Event(), max_connections_per_client=1))
    url = f"http://127.0.0.1:{server.port}/ws"
    async with (
        aiohttp.ClientSession() as session,
        aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
        ) as other_address,
    ):
        first = await session.ws_connect(url)
        with pytest.raises(WSServerHandshakeError) as refused:
            await session.ws_connect(url)
        assert refused.value.status == 503
        other = await other_address.ws_connect(url)
        await first.close()
        await other.close()


def last_frame(data: bytes) -> tuple[int, bytes]:
    """The opcode and payload of the last of the unmasked server frames in ``data``."""
    position, frame = 0, (0, b"")
    while position < len(data):
        opcode, length = data[position] & 0x0F, data[position + 1] & 0x7F
        position += 2
        if length == 126:
            length = int.from_bytes(data[position : position + 2], "big")
            position += 2
        elif length == 127:
            length = int.from_bytes(data[position : position + 8], "big")
            position += 8
        frame = (opcode, data[position : position + length])
        position += length
    return frame


async def test_slow_reader_that_catches_up_reads_the_1008_close_frame(
    each_mode_server: Any,
) -> None:
    """The 1008 close frame is queued behind the unread data, so a late reader still gets it."""
    outcome: asyncio.Future[tuple[int, int, float]] = asyncio.get_running_loop().create_future()
    server = await each_mode_server(
        flood_app(outcome, send_timeout=0.3, write_buffer_limit=64 * 1024)
    )
    reader, writer = await open_slow_reader(server.port)
    try:
        code, _, _ = await asyncio.wait_for(outcome, 10)
        data = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    opcode, payload = last_frame(data)
    assert code == 1008
    assert (opcode, int.from_bytes(payload[:2], "big")) == (0x8, 1008)
    assert payload[2:] == b"Send timeout: reader too slow"
