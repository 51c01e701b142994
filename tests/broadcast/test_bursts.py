"""A publisher in a tight loop does not make members that read look slow."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

import aioendpoints
from aioendpoints import Broadcast

from .chat_app import make_app
from .conftest import RECEIVE_TIMEOUT, ChatServers

MESSAGES = 200
PADDING = "x" * 64 * 1024  # 200 of these, 13 MB, are more than the kernel buffers hold


async def test_burst_reaches_a_reading_member(aiohttp_client: Any, group: str) -> None:
    """13 MB published in a loop reach a reading member, which is not taken for slow.

    Each publish yields to the event loop while members have unsent data, so the sockets
    are flushed between publishes instead of piling everything up.
    """
    app = make_app(Broadcast("memory://"))
    client = await aiohttp_client(app)
    member = await ChatServers(client, client).connect(group)

    async def receive_all() -> list[int]:
        received = []
        for _ in range(MESSAGES):
            message = await member.receive(timeout=RECEIVE_TIMEOUT)
            assert message.type is aiohttp.WSMsgType.TEXT, message
            # '{"seq":N,...': cheaper than decoding 64 KiB of JSON, so the reader keeps up.
            received.append(int(message.data[7 : message.data.index(",")]))
        return received

    receiving = asyncio.create_task(receive_all())
    for seq in range(MESSAGES):
        await aioendpoints.publish(app, group, {"seq": seq, "pad": PADDING})
    assert await receiving == list(range(MESSAGES))
    assert len(aioendpoints.group_members(app, group)) == 1
