"""Backpressure as a property: whatever a reader does, no send and no close outlives its bound.

A raw client reads part of what the server sends, pauses, reads again and finally stops for
good. The server sends 8 KiB messages in a loop (and, in some examples, closes after a
number of them). For any such pattern:

* every ``send()`` returns or raises within ``send_timeout`` (plus scheduling slack);
* ``close()`` returns within ``send_timeout + close_timeout`` (plus slack): at most
  ``send_timeout`` to find room for the close frame behind unread data, then at most
  ``close_timeout`` for the peer to answer it;
* what the server buffers for the connection stays under ``write_buffer_limit`` plus one
  message.

The server's socket send buffer is made small, so that what the test reads moves the
transport's buffer, where aiohttp's flow control lives, rather than the kernel's.
"""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import aioendpoints
from aioendpoints import WebSocket, WebSocketDisconnect, WebSocketEndpoint, websocket_handler
from tests.conftest import ModeServer
from tests.rawws import RawWebSocket
from tests.resources import Baseline, settle

SEND_TIMEOUT = 0.3
CLOSE_TIMEOUT = 0.3
#: Scheduling slack on a loaded machine: two cores shared by several test runs.
SLACK = 2.0
LIMIT = 32 * 1024
MESSAGE = 8 * 1024
FRAME_HEADER = 4


@dataclass
class Record:
    """What one connection's sender saw."""

    transport: asyncio.Transport
    sends: list[float] = field(default_factory=list)
    close: float | None = None
    most_buffered: int = 0
    ended: bool = False


RECORDS_KEY = web.AppKey("records", list[Record])


class Sender(WebSocketEndpoint):
    """Sends until the reader is dropped, or closes after the number of sends the client asks."""

    async def on_connect(self, ws: WebSocket) -> None:
        await ws.accept()
        transport = ws.request.transport
        assert transport is not None
        record = Record(transport)
        ws.app[RECORDS_KEY].append(record)
        sock = transport.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        close_after = int(ws.query_params.get("close_after", "0")) or None
        loop = asyncio.get_running_loop()
        payload = "x" * MESSAGE
        try:
            for sent in range(2000):
                if sent == close_after:
                    started = loop.time()
                    await ws.close(1000, "enough")
                    record.close = loop.time() - started
                    return
                started = loop.time()
                try:
                    await ws.send(payload)
                finally:
                    record.sends.append(loop.time() - started)
                    record.most_buffered = max(
                        record.most_buffered, transport.get_write_buffer_size()
                    )
        except WebSocketDisconnect:
            pass

    async def on_disconnect(self, ws: WebSocket, close_code: int) -> None:
        ws.app[RECORDS_KEY][-1].ended = True


def sender_app() -> web.Application:
    app = web.Application()
    aioendpoints.setup(app)
    app[RECORDS_KEY] = []
    handler = websocket_handler(
        Sender,
        send_timeout=SEND_TIMEOUT,
        close_timeout=CLOSE_TIMEOUT,
        write_buffer_limit=LIMIT,
        heartbeat=None,
        compress=False,
    )
    app.router.add_get("/ws", handler)
    return app


@pytest.fixture
async def sender(each_mode_server: ModeServer) -> TestServer:
    """The sending server, in each server mode; shared by the examples of a test."""
    return await each_mode_server(sender_app())


#: How the client reads: each time the server is held up by the unread data, (bytes to read,
#: seconds to pause after); then it stops reading.
reading_patterns = st.lists(
    st.tuples(st.integers(0, 256 * 1024), st.sampled_from([0.0, 0.05, 0.2])),
    max_size=3,
)


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(pattern=reading_patterns, close_after=st.sampled_from([None, 40, 400]))
# The case of the issue: read some of the backlog, so the buffer is under the limit but
# not under its low-water mark, then stop; aiohttp's writer stays paused.
@example(pattern=[(LIMIT // 2, 0.05)], close_after=None)
@example(pattern=[(LIMIT // 2, 0.0), (LIMIT // 2, 0.05)], close_after=400)
async def test_no_send_or_close_outlives_its_bound(
    sender: TestServer, pattern: list[tuple[int, float]], close_after: int | None
) -> None:
    """For any pattern of partial reads and stops, sends and the close end within bounds."""
    assert sender.port is not None
    records = sender.app[RECORDS_KEY]
    count = len(records)
    path = "/ws" if close_after is None else f"/ws?close_after={close_after}"
    client = await RawWebSocket.connect("127.0.0.1", sender.port, path, receive_buffer=4096)
    try:
        assert await settle(lambda: len(records) > count, within=5)
        record = records[count]
        for size, pause in pattern:
            # Wait for the server to be held up by what this client has not read.
            await settle(
                lambda: record.ended or record.transport.get_write_buffer_size() > LIMIT // 2,
                within=5,
            )
            await read_up_to(client, size)
            await asyncio.sleep(pause)
        # It reads no more; the server must give up on it, or close, within the bounds.
        assert await settle(lambda: record.ended, within=20), record
    finally:
        client.reset()
    assert max(record.sends, default=0.0) < SEND_TIMEOUT + SLACK, record.sends
    if record.close is not None:
        assert record.close < SEND_TIMEOUT + CLOSE_TIMEOUT + SLACK, record.close
    assert record.most_buffered <= LIMIT + MESSAGE + FRAME_HEADER, record.most_buffered


async def read_up_to(client: RawWebSocket, size: int) -> None:
    """Read ``size`` bytes of whatever the server sent, or less if it stops sending."""
    left = size
    while left > 0:
        try:
            chunk = await asyncio.wait_for(client.reader.read(min(left, 65536)), 0.5)
        except TimeoutError:
            return
        if not chunk:
            return
        left -= len(chunk)


GO_KEY = web.AppKey("go", asyncio.Event)


class Resumer(WebSocketEndpoint):
    """Builds a backlog through its group, waits, then sends a message of its own."""

    async def on_connect(self, ws: WebSocket) -> None:
        await ws.accept()
        transport = ws.request.transport
        assert transport is not None
        record = Record(transport)
        ws.app[RECORDS_KEY].append(record)
        transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        await ws.join("backlog")
        # Group messages go straight into the transport's buffer: past the limit, aiohttp's
        # writer is paused. The kernel's buffers take a few hundred KiB first.
        for _ in range(2000):
            if transport.get_write_buffer_size() > 2 * LIMIT:
                await asyncio.sleep(0.05)
                if transport.get_write_buffer_size() > 2 * LIMIT:
                    break
            await ws.publish("backlog", "b" * MESSAGE)
        await ws.app[GO_KEY].wait()
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            await ws.send("a" * MESSAGE)
            await ws.send("a" * MESSAGE)
        except WebSocketDisconnect:
            pass
        finally:
            record.sends.append(loop.time() - started)

    async def on_disconnect(self, ws: WebSocket, close_code: int) -> None:
        ws.app[RECORDS_KEY][-1].ended = True


async def test_a_send_after_a_partial_drain_is_bounded(each_mode_server: ModeServer) -> None:
    """A reader that drains part of its backlog and stops: the next sends end in time.

    aiohttp's writer stays paused until the buffer is under a quarter of its limit; a send
    made while it is between the two must not wait for the reader forever.
    """
    app = web.Application()
    aioendpoints.setup(app)
    app[RECORDS_KEY] = []
    app[GO_KEY] = asyncio.Event()
    app.router.add_get(
        "/ws",
        websocket_handler(
            Resumer,
            send_timeout=SEND_TIMEOUT,
            close_timeout=CLOSE_TIMEOUT,
            write_buffer_limit=LIMIT,
            heartbeat=None,
            compress=False,
        ),
    )
    server = await each_mode_server(app)
    assert server.port is not None
    client = await RawWebSocket.connect("127.0.0.1", server.port, "/ws", receive_buffer=4096)
    records = app[RECORDS_KEY]
    try:
        assert await settle(lambda: bool(records), within=5)
        (record,) = records
        buffered = record.transport.get_write_buffer_size
        assert await settle(lambda: buffered() > LIMIT, within=5), buffered()
        # Read a little at a time until the backlog leaves room for a message under the
        # limit, but is not under a quarter of it: aiohttp's writer is still paused.
        room = LIMIT - MESSAGE - 2048
        for _ in range(1000):
            if buffered() < room:
                break
            await client.reader.read(512)
            await asyncio.sleep(0.005)
        assert LIMIT // 4 < buffered() < room, buffered()
        app[GO_KEY].set()
        assert await settle(lambda: record.ended, within=SEND_TIMEOUT + CLOSE_TIMEOUT + 10)
    finally:
        client.reset()
    assert record.sends[0] < SEND_TIMEOUT + SLACK, record.sends


class Blocked(WebSocketEndpoint):
    """Sends to a reader that reads nothing, with no send timeout: only the heartbeat helps."""

    async def on_connect(self, ws: WebSocket) -> None:
        await ws.accept()
        transport = ws.request.transport
        assert transport is not None
        ws.app[RECORDS_KEY].append(Record(transport))
        transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        for _ in range(10_000):
            await ws.send("x" * MESSAGE)

    async def on_disconnect(self, ws: WebSocket, close_code: int) -> None:
        ws.app[RECORDS_KEY][-1].ended = True
        ws.app[CODES_KEY].append(close_code)


CODES_KEY = web.AppKey("codes", list[int])


async def test_heartbeat_drops_a_reader_whose_buffer_is_full(each_mode_server: ModeServer) -> None:
    """A silent peer with a full buffer is dropped by the heartbeat: 1006, fd and task back.

    Its close could never be flushed; the connection is aborted instead of waiting for it.
    """
    app = web.Application()
    aioendpoints.setup(app)
    app[RECORDS_KEY] = []
    app[CODES_KEY] = []
    app.router.add_get(
        "/ws",
        # A heartbeat long enough that the buffer fills first even on a starved machine
        # (the sweep drops a silent peer after 1 to 1.5 heartbeats).
        websocket_handler(Blocked, send_timeout=None, heartbeat=2.0, write_buffer_limit=LIMIT),
    )
    server = await each_mode_server(app)
    assert server.port is not None
    baseline = Baseline.take()
    client = await RawWebSocket.connect("127.0.0.1", server.port, "/ws", receive_buffer=4096)
    assert await settle(lambda: bool(app[RECORDS_KEY]), within=5)
    (record,) = app[RECORDS_KEY]
    assert await settle(lambda: record.transport.get_write_buffer_size() > LIMIT, within=5)
    assert await settle(lambda: record.ended, within=20)
    assert app[CODES_KEY] == [1006]
    client.reset()
    assert await baseline.restored() == baseline
