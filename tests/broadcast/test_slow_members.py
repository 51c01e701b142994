"""A member that does not read is closed by the policy; the others get everything."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
import pytest

import aioendpoints
from aioendpoints import Broadcast, CloseCode, close_slow_member
from aioendpoints.broadcast import SlowMemberPolicy

from .chat_app import make_app
from .conftest import RECEIVE_TIMEOUT, ChatServers

#: Large messages fill the kernel's socket buffers quickly; the loop is bounded.
PADDING = "x" * 64 * 1024
MAX_MESSAGES = 1000


@pytest.mark.parametrize(
    ("policy", "close_code"),
    [
        (close_slow_member(timeout=1.0), 1013),
        (close_slow_member(CloseCode.POLICY_VIOLATION, timeout=1.0), 1008),
    ],
    ids=["default-1013", "custom-1008"],
)
async def test_slow_member_is_closed_and_others_get_everything(
    broadcast_url: str,
    aiohttp_client: Any,
    group: str,
    caplog: pytest.LogCaptureFixture,
    policy: SlowMemberPolicy,
    close_code: int,
) -> None:
    """A client that never reads is closed by the policy while a reading one misses nothing."""
    members_app = make_app(
        Broadcast(
            broadcast_url, buffer_limit=64 * 1024, slow_member_timeout=0.5, on_slow_member=policy
        )
    )
    members = await aiohttp_client(members_app)
    publisher_app = members_app if broadcast_url == "memory://" else make_app(broadcast_url)
    if publisher_app is not members_app:
        await aiohttp_client(publisher_app)
    chat = ChatServers(members, members)
    fast = await chat.connect(group)
    slow = await chat.connect(group)  # and never reads again
    server_side = set(aioendpoints.group_members(members_app, group))
    received: asyncio.Queue[int] = asyncio.Queue()

    async def read_fast() -> None:
        while True:
            message = await fast.receive()
            if message.type is not aiohttp.WSMsgType.TEXT:
                return
            await received.put(message.json()["seq"])

    reader = asyncio.create_task(read_fast())
    published = 0
    caplog.set_level(logging.WARNING, "aioendpoints.broadcast")
    try:
        # Each message waits for the fast member, so only the slow one falls behind.
        while not any(member.closed for member in server_side):
            assert published < MAX_MESSAGES, "the slow member was never closed"
            await aioendpoints.publish(publisher_app, group, {"seq": published, "pad": PADDING})
            assert await asyncio.wait_for(received.get(), RECEIVE_TIMEOUT) == published
            published += 1
        for _ in range(10):
            await aioendpoints.publish(publisher_app, group, {"seq": published, "pad": PADDING})
            assert await asyncio.wait_for(received.get(), RECEIVE_TIMEOUT) == published
            published += 1
    finally:
        reader.cancel()
    await chat.wait_members(group, 1)
    (closed,) = server_side - aioendpoints.group_members(members_app, group)
    assert closed.close_code == close_code
    assert "over the broadcast buffer limit" in caplog.text
    async with asyncio.timeout(RECEIVE_TIMEOUT):
        while (await slow.receive()).type is aiohttp.WSMsgType.TEXT:
            pass  # what was sent before the server gave up on it


async def test_member_briefly_behind_misses_nothing(aiohttp_client: Any, group: str) -> None:
    """A member over the limit for less than ``slow_member_timeout`` gets every message."""
    app = make_app(Broadcast("memory://", buffer_limit=64 * 1024, slow_member_timeout=60))
    client = await aiohttp_client(app)
    member = await ChatServers(client, client).connect(group)
    (server_side,) = aioendpoints.group_members(app, group)
    transport = server_side.request.transport
    assert transport is not None
    published = 0
    while transport.get_write_buffer_size() <= 64 * 1024:  # until the member is behind
        assert published < MAX_MESSAGES, "the member never fell behind"
        await aioendpoints.publish(app, group, {"seq": published, "pad": PADDING})
        published += 1
    await aioendpoints.publish(app, group, {"seq": published, "pad": PADDING})  # while behind
    published += 1
    for seq in range(published):
        message = await member.receive(timeout=RECEIVE_TIMEOUT)
        assert message.type is aiohttp.WSMsgType.TEXT, message
        assert message.json()["seq"] == seq
    assert aioendpoints.group_members(app, group) == {server_side}
