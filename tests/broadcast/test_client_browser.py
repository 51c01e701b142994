"""The browser module in Chromium: pages resume after their server restarts, missing nothing.

Two pages follow a group through ``ResumingSocket``, served by one ``python -m aiohttp.web``
process; another process publishes through Redis while the first is down.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest

from .chat_app import BROADCAST_ENV, HISTORY_ENV
from .processes import ROOT, aiohttp_web, free_port, serve, wait_for_port

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

pytestmark = pytest.mark.slow

# Playwright's waits are in milliseconds.
WAIT_MS = 20_000


@asynccontextmanager
async def server(port: int, redis_url: str, history: str) -> AsyncIterator[subprocess.Popen[bytes]]:
    """The test chat app on ``port``, stopped on exit (if still running)."""
    env = {**os.environ, BROADCAST_ENV: redis_url, HISTORY_ENV: history, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(aiohttp_web(port), cwd=ROOT, env=env)  # noqa: ASYNC220
    try:
        await wait_for_port(port, process)
        yield process
    finally:
        process.terminate()
        await asyncio.to_thread(process.wait, 15)


async def open_page(browser: Browser, base: str, group: str) -> Page:
    """A page following ``group``, once its socket is open."""
    page = await browser.new_page()
    await page.goto(f"{base}/page#{group}")
    await page.wait_for_selector("body[data-open=yes]", state="attached", timeout=WAIT_MS)
    return page


async def shown(page: Page, count: int) -> list[Any]:
    """The page's messages once it shows ``count`` of them."""
    await page.wait_for_function(
        f"document.querySelectorAll('#log li').length >= {count}", timeout=WAIT_MS
    )
    import json

    return [json.loads(text) for text in await page.locator("#log li").all_text_contents()]


async def publish(session: aiohttp.ClientSession, base: str, group: str, count: int) -> None:
    """``{"seq": 0..count-1}`` to ``group``, through the server at ``base``."""
    async with session.post(f"{base}/publish/{group}?count={count}") as response:
        assert response.status == 204


@pytest.mark.parametrize(
    ("history", "missed", "status"),
    [("100,600", 5, "resumed"), ("3,600", 5, "history lost")],
    ids=["resumed", "history-lost"],
)
async def test_pages_resume_after_their_server_restarts(
    browser: Browser, redis_url: str, history: str, missed: int, status: str
) -> None:
    """After a server restart the pages show every message published meanwhile (from
    another process, through Redis) exactly once and in order, or say that history was
    lost when it no longer holds them all."""
    group = f"room-{uuid.uuid4().hex}"
    port, publisher_port = free_port(), free_port()
    async with (
        serve(aiohttp_web(publisher_port), redis_url, publisher_port, history=history) as other,
        aiohttp.ClientSession() as session,
    ):
        async with server(port, redis_url, history):
            pages = [await open_page(browser, f"http://127.0.0.1:{port}", group) for _ in range(2)]
            await publish(session, other, group, 2)
            for page in pages:
                assert await shown(page, 2) == [{"seq": 0}, {"seq": 1}]
        for page in pages:
            await page.wait_for_selector("body[data-open=no]", state="attached", timeout=WAIT_MS)
        await publish(session, other, group, missed)
        async with server(port, redis_url, history):
            for page in pages:
                await page.wait_for_selector(f"#status:text-is('{status}')", timeout=WAIT_MS)
            await publish(session, other, group, 1)
            for page in pages:
                messages = await shown(page, 3 if status != "resumed" else 2 + missed + 1)
                if status == "resumed":
                    expected = [0, 1, *range(missed), 0]
                    assert messages == [{"seq": n} for n in expected]
                else:
                    assert messages == [{"seq": 0}, {"seq": 1}, {"seq": 0}]
