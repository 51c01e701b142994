"""Nothing read from Redis reaches a socket unchecked: a stray PUBLISH cannot inject frames."""

from __future__ import annotations

import logging
import os
import struct
import time

import aiohttp
import pytest
from aiohttp import web
from yarl import URL

import aioendpoints
from aioendpoints import Broadcast, WebSocket, WebSocketRoutes
from aioendpoints.broadcast.frames import BINARY, TEXT, inbound_problem
from aioendpoints.broadcast.redis import RedisBackend
from tests.conftest import ModeClient

RECEIVE_TIMEOUT = 10.0


def stray_header() -> bytes:
    """What another process puts before the opcode: 8 random origin bytes and a timestamp."""
    return os.urandom(8) + struct.pack("!d", time.time())


@pytest.mark.parametrize(
    ("opcode", "payload", "problem"),
    [
        (TEXT, "héllo".encode(), None),
        (BINARY, b"\xff\x00", None),
        (TEXT, b"", None),
        (0x8, b"\x03\xe8bye", "opcode 0x8"),
        (0x9, b"ping", "opcode 0x9"),
        (0xA, b"", "opcode 0xa"),
        (0x0, b"more", "opcode 0x0"),
        (0x3, b"", "opcode 0x3"),
        (TEXT, b"\xff\xfe", "UTF-8"),
        (TEXT, b"x" * 1025, "over the limit"),
        (BINARY, b"x" * 1025, "over the limit"),
    ],
    ids=[
        "text",
        "binary",
        "empty",
        "close",
        "ping",
        "pong",
        "continuation",
        "reserved",
        "bad-utf8",
        "long-text",
        "long-binary",
    ],
)
def test_inbound_check(opcode: int, payload: bytes, problem: str | None) -> None:
    """Only text (valid UTF-8) and binary frames within the size limit may go out."""
    found = inbound_problem(opcode, payload, 1024)
    if problem is None:
        assert found is None
    else:
        assert found is not None
        assert problem in found


async def test_stray_publishes_are_dropped_and_logged_once(
    redis_url: str,
    group: str,
    each_mode_client: ModeClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Close frames, pings, bad UTF-8 and oversized payloads PUBLISHed by hand are dropped."""
    caplog.set_level(logging.DEBUG)
    from redis.asyncio import Redis

    backend = RedisBackend(redis_url, max_message_size=1024)
    routes = WebSocketRoutes()

    @routes.websocket_route("/ws")
    async def echo(ws: WebSocket) -> None:
        await ws.accept()
        await ws.join(group)
        await ws.send("joined")
        async for message in ws:
            await ws.send(message)

    app = web.Application()
    aioendpoints.setup(app, broadcast=Broadcast(backend))
    app.add_routes(routes)
    client = await each_mode_client(app)
    database = URL(redis_url).path.strip("/") or "0"
    channel = f"aioendpoints:{database}:group:{group}"
    redis = Redis.from_url(redis_url)
    try:
        async with client.ws_connect("/ws") as ws:
            assert await ws.receive_str(timeout=RECEIVE_TIMEOUT) == "joined"
            header = stray_header()
            strays = [
                b"short",
                header + b"\x08" + b"\x03\xe8injected close",
                header + b"\x09injected ping",
                header + b"\x01\xff\xfe not UTF-8",
                header + b"\x02" + b"x" * 2000,
                header + b"\x0b",
            ]
            for stray in strays:
                await redis.publish(channel, stray)
            # A well-formed message from another process still gets through, after them.
            await redis.publish(channel, header + b"\x01from elsewhere")
            first = await ws.receive(timeout=RECEIVE_TIMEOUT)
            assert (first.type, first.data) == (aiohttp.WSMsgType.TEXT, "from elsewhere")
            await ws.send_str("still open")
            assert await ws.receive_str(timeout=RECEIVE_TIMEOUT) == "still open"
    finally:
        await redis.aclose()
    assert backend.rejected == len(strays)
    warnings = [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert len(warnings) == 1, [record.getMessage() for record in warnings]
    assert channel in warnings[0].getMessage()
    assert not [record for record in caplog.records if record.exc_info]


async def test_publishing_more_than_the_limit_is_refused(redis_url: str, group: str) -> None:
    """A payload over max_message_size raises at publish, so every process agrees on it."""
    backend = RedisBackend(redis_url, max_message_size=16)
    hub = Broadcast(backend)
    await hub.start()
    try:
        with pytest.raises(ValueError, match="max_message_size"):
            await hub.publish(group, "x" * 17)
        await hub.publish(group, "x" * 16)
    finally:
        await hub.stop()
