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

import aiohttp
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


async def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The demo's aioendpoints metrics, as Prometheus parses them."""
    from prometheus_client.parser import text_string_to_metric_families

    async with aiohttp.ClientSession() as session, session.get(f"{url}metrics") as response:
        assert response.status == 200
        text = await response.text()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith("aioendpoints_")
    }


async def test_metrics_move_as_pages_chat(chat_server: ChatServer, browser: Browser) -> None:
    """/metrics counts the pages' connections, their messages and the room's publishes."""
    room = (("route", "/ws/rooms/{room}"),)
    before = await scrape(chat_server.url)
    ada = await join(browser, chat_server.url, "Ada", "metrics-test")
    bob = await join(browser, chat_server.url, "Bob", "metrics-test")
    await wait_for_members(ada, ["Ada", "Bob"])
    await say(bob, "Hello from Bob")
    await wait_for_message(ada, "Hello from Bob")
    await say(ada, "Hi Bob")
    await wait_for_message(bob, "Hi Bob")
    after = await scrape(chat_server.url)

    def moved(name: str, labels: tuple[tuple[str, str], ...] = room) -> float:
        return after[(name, labels)] - before.get((name, labels), 0)

    assert after[("aioendpoints_connections", room)] == 2
    assert moved("aioendpoints_connections_total") == 2
    # Each page sent one chat message; each got a welcome and the room's member list.
    assert moved("aioendpoints_messages_received_total") == 2
    assert moved("aioendpoints_messages_sent_total") == 4
    # Each join and each chat message is published to the room.
    assert moved("aioendpoints_published_total", ()) == 4
    assert after[("aioendpoints_group_members", ())] == 4  # a room and a member group each
    await bob.close()
    await wait_for_members(ada, ["Ada"])
    final = await scrape(chat_server.url)
    assert final[("aioendpoints_connections", room)] == 1
    assert final[("aioendpoints_disconnects_total", (("code", "1001"), *room))] == 1


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
        # The rooms' history was in the stopped process: the page says what it lost.
        await page.locator("#messages li.notice", has_text="History lost").wait_for(timeout=WAIT_MS)
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


async def test_a_page_shows_what_was_said_while_its_server_restarted(
    shared_chat_servers: list[ChatServer], browser: Browser
) -> None:
    """Ada's server restarts while Bob, on the other process, talks: she sees each line once."""
    room = f"resume-{uuid.uuid4().hex[:8]}"
    first, second = shared_chat_servers
    ada = await join(browser, first.url, "Ada", room)
    bob = await join(browser, second.url, "Bob", room)
    await wait_for_members(ada, ["Ada", "Bob"])
    await say(bob, "before")
    await wait_for_message(ada, "before")

    first.stop()
    await ada.wait_for_selector('#status[data-state="reconnecting"]', timeout=WAIT_MS)
    missed = [f"missed {n}" for n in range(5)]
    for text in missed:
        await say(bob, text)
        await wait_for_message(bob, text)
    first.start()

    await ada.locator("#messages li.notice", has_text="Caught up").wait_for(timeout=WAIT_MS)
    await say(bob, "after")
    await wait_for_message(ada, "after")
    shown = await ada.locator("#messages li.message .text").all_text_contents()
    assert shown == ["before", *missed, "after"]
    assert await ada.locator("#messages li.notice", has_text="History lost").count() == 0
