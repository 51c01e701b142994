"""The origin check against a real browser: headless Chromium through Playwright."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from aioendpoints import WebSocket, WebSocketRoutes

if TYPE_CHECKING:
    from playwright.async_api import Browser, BrowserContext

#: Opens a WebSocket from the page, sends "hi" and reports the echo or the close code.
OPEN_WEBSOCKET = """
url => new Promise(resolve => {
    const ws = new WebSocket(url);
    ws.onopen = () => ws.send("hi");
    ws.onmessage = event => { resolve("echo:" + event.data); ws.close(); };
    ws.onclose = event => resolve("closed:" + event.code);
})
"""


async def blank_page(request: web.Request) -> web.Response:
    return web.Response(text="<!doctype html><title>page</title>", content_type="text/html")


def websocket_app(handshakes: list[dict[str, str]], **route_options: Any) -> web.Application:
    """An app with a page at / and an echo route at /ws; it records each handshake's headers."""
    routes = WebSocketRoutes()

    @routes.websocket_route("/ws", **route_options)
    async def echo(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send(await ws.receive())

    @web.middleware
    async def record(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path == "/ws":
            handshakes.append(
                {name: request.headers.get(name, "") for name in ("Origin", "Sec-Fetch-Site")}
            )
        return await handler(request)  # type: ignore[no-any-return]

    app = web.Application(middlewares=[record])
    app.router.add_get("/", blank_page)
    app.add_routes(routes)
    return app


async def open_from(browser: Browser | BrowserContext, page_url: str, websocket_url: str) -> str:
    """Open ``page_url`` in a new page, and from it a WebSocket; the echo or the close code."""
    page = await browser.new_page()
    try:
        await page.goto(page_url)
        return str(await page.evaluate(OPEN_WEBSOCKET, websocket_url))
    finally:
        await page.close()


async def test_same_origin_page_connects(browser: Browser, aiohttp_server: Any) -> None:
    """A page served by the same server opens its WebSocket."""
    handshakes: list[dict[str, str]] = []
    server = await aiohttp_server(websocket_app(handshakes))
    result = await open_from(
        browser, f"http://127.0.0.1:{server.port}/", f"ws://127.0.0.1:{server.port}/ws"
    )
    assert result == "echo:hi"
    # Chromium sends no Fetch Metadata with a WebSocket handshake: the Origin decides.
    assert handshakes == [{"Origin": f"http://127.0.0.1:{server.port}", "Sec-Fetch-Site": ""}]


async def test_cross_site_page_is_refused(browser: Browser, aiohttp_server: Any) -> None:
    """A page on another site cannot open a WebSocket to the server: the handshake gets 403."""
    handshakes: list[dict[str, str]] = []
    server = await aiohttp_server(websocket_app(handshakes))
    other_site = await aiohttp_server(websocket_app([]))
    result = await open_from(
        browser, f"http://localhost:{other_site.port}/", f"ws://127.0.0.1:{server.port}/ws"
    )
    assert result == "closed:1006"  # What a browser reports for a refused handshake.
    assert handshakes == [{"Origin": f"http://localhost:{other_site.port}", "Sec-Fetch-Site": ""}]


async def test_allowed_cross_site_page_connects(browser: Browser, aiohttp_server: Any) -> None:
    """A page on a site listed in allowed_origins opens its WebSocket."""
    other_site = await aiohttp_server(websocket_app([]))
    server = await aiohttp_server(
        websocket_app([], allowed_origins=[f"http://localhost:{other_site.port}"])
    )
    result = await open_from(
        browser, f"http://localhost:{other_site.port}/", f"ws://127.0.0.1:{server.port}/ws"
    )
    assert result == "echo:hi"
