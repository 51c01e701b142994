"""The chat demo in a real browser: headless Chromium driven by Playwright.

The demo runs as the README starts it (``python -m aiohttp.web ... examples.chat:init_app``)
on a free loopback port. Set ``AIOENDPOINTS_UPDATE_SCREENSHOT=1`` to refresh
``docs/_static/chat.png`` from the run.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.chat_server import ROOT, ChatServer, free_port, server_errors

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

SCREENSHOT = ROOT / "docs" / "_static" / "chat.png"
# Playwright's waits are in milliseconds.
WAIT_MS = 20_000

pytestmark = pytest.mark.slow


@pytest.fixture
def chat_server(tmp_path: Path) -> Iterator[ChatServer]:
    """The chat demo, served on a free loopback port for the test."""
    server = ChatServer(free_port(), tmp_path / "server.log")
    server.start()
    yield server
    server.stop()
    assert not server_errors(server.log()), server.log()


@pytest.fixture
def shared_chat_servers(tmp_path: Path, redis_url: str) -> Iterator[list[ChatServer]]:
    """Two demo processes sharing rooms through the test Redis (``CHAT_REDIS_URL``)."""
    servers = [ChatServer(free_port(), tmp_path / f"server-{n}.log", redis_url) for n in (1, 2)]
    for server in servers:
        server.start()
    yield servers
    for server in servers:
        server.stop()
    for server in servers:
        assert not server_errors(server.log()), server.log()


async def join(browser: Browser, url: str, name: str, room: str) -> Page:
    """Open the chat in a new page and join ``room`` as ``name``."""
    page = await browser.new_page(viewport={"width": 900, "height": 560})
    await page.goto(url)
    await page.fill("#name", name)
    await page.fill("#room", room)
    await page.click("#join-button")
    await page.wait_for_selector('#status[data-state="connected"]', timeout=WAIT_MS)
    assert await page.is_hidden("#join")
    return page


async def say(page: Page, text: str) -> None:
    """Type ``text`` into the page's message box and send it."""
    await page.fill("#text", text)
    await page.click("#send-button")


async def wait_for_message(page: Page, text: str) -> None:
    """Wait until the page shows a chat message with ``text``."""
    await page.locator("#messages li.message .text", has_text=text).wait_for(timeout=WAIT_MS)


async def wait_for_members(page: Page, names: list[str]) -> None:
    """Wait until the page lists exactly ``names`` as the room's members, in any order."""
    await page.wait_for_function(
        "names => JSON.stringify([...document.querySelectorAll('#members li')]"
        ".map(li => li.textContent).sort()) === JSON.stringify(names)",
        arg=sorted(names),
        timeout=WAIT_MS,
    )


async def test_two_pages_chat_in_one_room(
    chat_server: ChatServer, browser: Browser, tmp_path: Path
) -> None:
    """One page's message appears live on another page in the same room."""
    ada = await join(browser, chat_server.url, "Ada", "browser-test")
    bob = await join(browser, chat_server.url, "Bob", "browser-test")
    await wait_for_members(ada, ["Ada", "Bob"])

    await say(bob, "Hello from Bob")
    await wait_for_message(ada, "Hello from Bob")
    await say(ada, "Hi Bob, Ada here")
    await wait_for_message(bob, "Hi Bob, Ada here")

    screenshot = await ada.screenshot(path=str(tmp_path / "chat.png"))
    assert screenshot.startswith(b"\x89PNG")
    if os.environ.get("AIOENDPOINTS_UPDATE_SCREENSHOT") == "1":
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(tmp_path / "chat.png", SCREENSHOT)


async def test_pages_reconnect_after_a_server_restart(
    chat_server: ChatServer, browser: Browser
) -> None:
    """After a restart the pages say the connection dropped, reconnect by themselves, chat."""
    ada = await join(browser, chat_server.url, "Ada", "restart-test")
    bob = await join(browser, chat_server.url, "Bob", "restart-test")
    await wait_for_members(ada, ["Ada", "Bob"])

    chat_server.stop()
    for page in (ada, bob):
        await page.wait_for_selector('#status[data-state="reconnecting"]', timeout=WAIT_MS)
        # The status line moves on to "Reconnecting (attempt n)"; the notice stays.
        notice = page.locator("#messages li.notice", has_text="Connection lost")
        await notice.wait_for(timeout=WAIT_MS)
        assert await page.is_disabled("#send-button")

    chat_server.start()
    for page in (ada, bob):
        await page.locator("#status", has_text="Reconnected").wait_for(timeout=WAIT_MS)
        assert await page.get_attribute("#status", "data-state") == "connected"
    await wait_for_members(bob, ["Ada", "Bob"])

    await say(ada, "Back again")
    await wait_for_message(bob, "Back again")


async def test_pages_on_two_processes_share_a_room(
    shared_chat_servers: list[ChatServer], browser: Browser
) -> None:
    """Pages served by two processes sharing Redis list each other and chat."""
    room = f"shared-{uuid.uuid4().hex[:8]}"  # the Redis may be shared with other tests
    first, second = shared_chat_servers
    ada = await join(browser, first.url, "Ada", room)
    cy = await join(browser, first.url, "Cy", room)
    bob = await join(browser, second.url, "Bob", room)
    for page in (ada, bob, cy):
        await wait_for_members(page, ["Ada", "Bob", "Cy"])

    await say(bob, "Hello from the second process")
    await wait_for_message(ada, "Hello from the second process")
    await say(ada, "Hi Bob, from the first")
    await wait_for_message(bob, "Hi Bob, from the first")

    await cy.close()
    await wait_for_members(bob, ["Ada", "Bob"])
