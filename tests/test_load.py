"""Load held: a thousand concurrent connections, and a thousand connections come and gone.

Both ends live in this process on loopback: the server is an aioendpoints JSON endpoint
that checks the sequence numbers it receives, the clients are aiohttp's.
"""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import aiohttp
import pytest
from aiohttp import web

import aioendpoints
from aioendpoints import WebSocket, WebSocketEndpoint, websocket_handler
from tests.resources import Baseline, raise_open_file_limit, rss_bytes

CONNECTIONS = 1_000
MESSAGES_PER_CONNECTION = 100
CHURN_ROUNDS = 5
#: Handshakes in flight at once; all connections are still open together afterwards.
CONNECTING_AT_ONCE = 100
#: Seconds any one load run may take before the test fails rather than hangs.
RUN_TIMEOUT = 120.0


class SequenceChecker(WebSocketEndpoint):
    """Echoes JSON messages and records, per connection, the sequence numbers received."""

    encoding = "json"
    #: Live instances: one per open connection, none once they have all ended.
    instances: ClassVar[weakref.WeakSet[SequenceChecker]] = weakref.WeakSet()
    #: Sequence numbers received, per connection id.
    received: ClassVar[dict[int, list[int]]] = {}

    def __init__(self, websocket: WebSocket) -> None:
        super().__init__(websocket)
        SequenceChecker.instances.add(self)

    async def on_receive(self, ws: WebSocket, data: Any) -> None:
        SequenceChecker.received.setdefault(data["client"], []).append(data["seq"])
        await ws.send(data)


@pytest.fixture
async def server_url() -> AsyncIterator[str]:
    """The sequence-checking endpoint on a free port, with a backlog for 1,000 handshakes."""
    # Each connection costs two descriptors here: the client's socket and the server's.
    raise_open_file_limit(4 * CONNECTIONS + 256)
    SequenceChecker.received = {}
    app = web.Application()
    aioendpoints.setup(app)
    app.router.add_get("/seq", websocket_handler(SequenceChecker))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=CONNECTIONS)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}/seq"
    await runner.cleanup()


async def open_connections(
    session: aiohttp.ClientSession, url: str, count: int, compress: int
) -> list[aiohttp.ClientWebSocketResponse]:
    gate = asyncio.Semaphore(CONNECTING_AT_ONCE)

    async def connect() -> aiohttp.ClientWebSocketResponse:
        async with gate:
            return await session.ws_connect(url, compress=compress, autoping=True)

    return list(await asyncio.gather(*(connect() for _ in range(count))))


async def exchange(websocket: aiohttp.ClientWebSocketResponse, client: int) -> list[int]:
    """Send the numbered messages, then read the echoes; return their sequence numbers."""
    for seq in range(MESSAGES_PER_CONNECTION):
        await websocket.send_json({"client": client, "seq": seq, "pad": "x" * 64})
    echoed = []
    for _ in range(MESSAGES_PER_CONNECTION):
        message = await websocket.receive_json()
        assert message["client"] == client
        echoed.append(message["seq"])
    await websocket.close()
    return echoed


@pytest.mark.slow
@pytest.mark.parametrize("compress", [0, 15], ids=["plain", "permessage-deflate"])
async def test_thousand_connections_each_get_every_message_once_in_order(
    server_url: str, compress: int
) -> None:
    """1,000 open connections x 100 JSON messages: each delivered once, in order, both ways."""
    expected = list(range(MESSAGES_PER_CONNECTION))
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        async with asyncio.timeout(RUN_TIMEOUT):
            sockets = await open_connections(session, server_url, CONNECTIONS, compress)
            assert all(bool(websocket.compress) == bool(compress) for websocket in sockets)
            assert len(SequenceChecker.instances) == CONNECTIONS
            echoes = await asyncio.gather(
                *(exchange(websocket, client) for client, websocket in enumerate(sockets))
            )
    assert all(echoed == expected for echoed in echoes)
    assert len(SequenceChecker.received) == CONNECTIONS
    assert all(seqs == expected for seqs in SequenceChecker.received.values())


async def churn_round(url: str) -> None:
    """Open 1,000 connections, one message each, and close them all."""
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        sockets = await open_connections(session, url, CONNECTIONS, compress=0)
        for client, websocket in enumerate(sockets):
            await websocket.send_json({"client": client, "seq": 0})
        for websocket in sockets:
            assert (await websocket.receive_json())["seq"] == 0
            await websocket.close()


@pytest.mark.slow
async def test_churn_returns_to_baseline(server_url: str) -> None:
    """5 rounds of 1,000 connects and disconnects leave no tasks, fds, instances, memory."""
    # A first round warms up caches and allocator pools, so it sets the memory baseline.
    async with asyncio.timeout(RUN_TIMEOUT):
        await churn_round(server_url)
    gc.collect()
    baseline = await Baseline.take().restored()
    rss_before = rss_bytes()
    for _ in range(CHURN_ROUNDS):
        async with asyncio.timeout(RUN_TIMEOUT):
            await churn_round(server_url)
        assert await baseline.restored() == baseline
        gc.collect()
        assert len(SequenceChecker.instances) == 0
    growth = (rss_bytes() - rss_before) / rss_before
    assert growth < 0.10, f"RSS grew by {growth:.1%}"
