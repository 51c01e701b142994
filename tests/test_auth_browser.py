"""A cookie credential in a real browser: a page of another site cannot ride it.

Chromium logs in to the server on ``127.0.0.1`` (a signed ``SameSite=Lax`` cookie), then
opens a WebSocket to it from the server's own page and from a page on ``localhost``, which
is another site. The origin check refuses the other site with 403 (and Chromium does not
send the ``Lax`` cookie along); with the origin check turned off, ``SameSite`` still keeps
the cookie out of the cross-site handshake, which gets 401.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import itsdangerous
from aiohttp import web

from aioendpoints import WebSocket, WebSocketRoutes
from aioendpoints.auth import CookieToken, TokenAuth
from tests.test_origins_browser import blank_page, open_from

if TYPE_CHECKING:
    from playwright.async_api import Browser

SIGNER = itsdangerous.URLSafeTimedSerializer("browser-test-secret", salt="login")


def verify(cookie: str) -> str | None:
    try:
        return str(SIGNER.loads(cookie, max_age=600))
    except itsdangerous.BadData:
        return None


async def log_in(request: web.Request) -> web.Response:
    response = web.Response(text="<!doctype html><title>in</title>", content_type="text/html")
    response.set_cookie("session", SIGNER.dumps("alice"), httponly=True, samesite="Lax")
    return response


def cookie_app(handshakes: list[tuple[str, int, bool]]) -> web.Application:
    """/login sets the cookie; /ws (origin check on) and /open-ws (off) greet its user."""
    routes = WebSocketRoutes()
    check = TokenAuth(verify, CookieToken("session"))

    async def greet(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send(f"hello {ws.principal}")
        await ws.receive()

    routes.add_websocket_route("/ws", greet, authenticate=check)
    routes.add_websocket_route("/open-ws", greet, authenticate=check, allowed_origins="*")

    @web.middleware
    async def record(request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            response: web.StreamResponse = await handler(request)
        except web.HTTPException as refusal:
            if request.path.endswith("ws"):
                handshakes.append((request.path, refusal.status, "session" in request.cookies))
            raise
        if request.path.endswith("ws"):
            handshakes.append((request.path, response.status, "session" in request.cookies))
        return response

    app = web.Application(middlewares=[record])
    app.router.add_get("/", blank_page)
    app.router.add_get("/login", log_in)
    app.add_routes(routes)
    return app


async def test_cross_site_page_cannot_ride_the_cookie(
    browser: Browser, aiohttp_server: Any
) -> None:
    """Same site: in with the cookie. Other site: 403 (origin), or 401 without the cookie."""
    handshakes: list[tuple[str, int, bool]] = []
    server = await aiohttp_server(cookie_app(handshakes))
    other_site = await aiohttp_server(cookie_app([]))
    own = f"http://127.0.0.1:{server.port}"
    elsewhere = f"http://localhost:{other_site.port}/"
    context = await browser.new_context()
    try:
        login = await context.new_page()
        await login.goto(f"{own}/login")
        await login.close()

        assert await open_from(context, f"{own}/", f"ws://127.0.0.1:{server.port}/ws") == (
            "echo:hello alice"
        )
        # The other site's page: the origin check refuses it, before any credential check.
        assert await open_from(context, elsewhere, f"ws://127.0.0.1:{server.port}/ws") == (
            "closed:1006"
        )
        # With the origin check off, SameSite=Lax keeps the cookie out of the handshake.
        assert await open_from(context, elsewhere, f"ws://127.0.0.1:{server.port}/open-ws") == (
            "closed:1006"
        )
        # And the same route takes the cookie from the server's own page.
        assert await open_from(context, f"{own}/", f"ws://127.0.0.1:{server.port}/open-ws") == (
            "echo:hello alice"
        )
    finally:
        await context.close()
    assert handshakes == [
        ("/ws", 101, True),
        ("/ws", 403, False),
        ("/open-ws", 401, False),
        ("/open-ws", 101, True),
    ]
