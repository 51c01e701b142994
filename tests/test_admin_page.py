"""The optional admin page: off by default, behind the user's check, live in a real browser."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
from aiohttp import web

import aioendpoints

from .admin_app import make_app
from .helpers import serving

if TYPE_CHECKING:
    from playwright.async_api import Browser

WAIT_MS = 20_000
SECRET = "let-me-in"


def allowed(request: web.Request) -> bool:
    """The test's check: a cookie only the test sets."""
    return request.cookies.get("admin") == SECRET


async def test_without_admin_path_there_is_no_page(aiohttp_client: Any) -> None:
    """Off by default: nothing answers at /admin."""
    client = await aiohttp_client(make_app())
    async with client.get("/admin") as response:
        assert response.status == 404


def test_admin_path_needs_a_check() -> None:
    """An admin page without a check is refused when the app is set up."""
    with pytest.raises(TypeError, match="admin_path needs admin_check"):
        aioendpoints.setup(web.Application(), admin_path="/admin")


async def test_the_check_guards_the_page_and_its_feed(aiohttp_client: Any) -> None:
    """A request the check refuses gets 403, for the page and for its WebSocket."""
    client = await aiohttp_client(make_app(admin_path="/admin", admin_check=allowed))
    async with client.get("/admin") as response:
        assert response.status == 403
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect("/admin/ws")
    assert refused.value.status == 403
    client.session.cookie_jar.update_cookies({"admin": SECRET})
    async with client.get("/admin") as response:
        assert response.status == 200
        assert "default-src 'none'" in response.headers["Content-Security-Policy"]
        assert '<table id="connections">' in await response.text()


async def test_an_async_check_is_awaited(aiohttp_client: Any) -> None:
    """The check may be a coroutine function."""

    async def check(request: web.Request) -> bool:
        return request.headers.get("X-Admin") == SECRET

    client = await aiohttp_client(make_app(admin_path="/admin", admin_check=check))
    async with client.get("/admin", headers={"X-Admin": SECRET}) as response:
        assert response.status == 200
    ws = await client.ws_connect("/admin/ws", headers={"X-Admin": SECRET})
    snapshot = await ws.receive_json(timeout=10)
    (me,) = snapshot["connections"]
    assert me["route"] == "/admin/ws"
    assert snapshot["groups"] == {}
    await ws.close()


@pytest.mark.slow
async def test_the_page_lists_connections_live(browser: Browser) -> None:
    """In Chromium, a new connection appears in the table and disappears when it closes."""
    app = make_app(admin_path="/admin", admin_check=allowed, metrics=True)
    async with serving(app) as url, aiohttp.ClientSession() as session:
        context = await browser.new_context()
        await context.add_cookies([{"name": "admin", "value": SECRET, "url": url}])
        page = await context.new_page()
        await page.goto(f"{url}/admin")
        await page.wait_for_selector('#status[data-state="live"]', timeout=WAIT_MS)
        ada = await session.ws_connect(f"{url}/ws?user=<b>ada</b>")
        await ada.send_str("hello")
        assert await ada.receive_str(timeout=10) == "hello"
        row = page.locator("#connections tbody tr", has_text="<b>ada</b>")
        await row.wait_for(timeout=WAIT_MS)
        # Shown as text, never as markup; the counts are the connection's.
        assert await row.locator("b").count() == 0
        cells = await row.locator("td").all_text_contents()
        assert cells[1:3] == ["/ws", "/ws"]
        assert cells[7:11] == ["1", "1", "5", "5"]
        await ada.close()
        await row.wait_for(state="detached", timeout=WAIT_MS)
        await context.close()
