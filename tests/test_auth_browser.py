"""A cookie credential in a real browser: a page of another site cannot ride it.

Chromium logs in to the server on ``127.0.0.1`` (a signed ``SameSite=Lax`` cookie), then
opens a WebSocket to it from the server's own page and from a page on ``localhost``, which
is another site. The origin check refuses the other site with 403 (and Chromium does not
send the ``Lax`` cookie along); with the origin check turned off, ``SameSite`` still keeps
the cookie out of the cross-site handshake, which gets 401.

A page that carries its token next to the subprotocol refreshes it with the how-to's
JavaScript handler and stays connected past the token's expiry; without the handler it is
closed with 4401.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import itsdangerous
import jwt
import pytest
from aiohttp import web

import aioendpoints
from aioendpoints import WebSocket, WebSocketRoutes
from aioendpoints.auth import CookieToken, Principal, SubprotocolToken, TokenAuth
from tests.test_docs import DOCS, directives
from tests.test_origins_browser import blank_page, open_from

if TYPE_CHECKING:
    from playwright.async_api import Browser

pytestmark = pytest.mark.slow

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


REFRESH_KEY = "browser-refresh-key-0123456789abcdef"
#: Seconds before expiry that the server asks; seconds after expiry that it still waits.
#: Tokens live AHEAD + 0.5 s, so the handshake has three seconds, even on a loaded machine.
AHEAD, GRACE = 2.5, 1.0


def jwt_for(subject: str, lifetime: float) -> str:
    return jwt.encode({"sub": subject, "exp": time.time() + lifetime}, REFRESH_KEY, "HS256")


def verify_jwt(token: str) -> Principal | None:
    try:
        claims = jwt.decode(token, REFRESH_KEY, algorithms=["HS256"])
    except jwt.InvalidTokenError:
        return None
    return Principal(claims["sub"], expires_at=claims["exp"])


def refresh_app(received: list[str]) -> web.Application:
    """/token hands out a fresh JWT; /feed (subprotocol token, short refresh) echoes."""
    routes = WebSocketRoutes()
    check = TokenAuth(verify_jwt, SubprotocolToken(), refresh_ahead=AHEAD, refresh_grace=GRACE)

    @routes.websocket_route("/feed", protocols=["feed.v1"], authenticate=check)
    async def feed(ws: WebSocket) -> None:
        await ws.accept()
        async for message in ws:
            received.append(message)
            await ws.send(f"{ws.principal.id}: {message}")

    async def token(request: web.Request) -> web.Response:
        return web.Response(text=jwt_for("alice", 3600))

    app = web.Application()
    aioendpoints.setup(app)
    app.router.add_get("/", blank_page)
    app.router.add_get("/token", token)
    app.add_routes(routes)
    return app


def documented_refresh_handler() -> str:
    """The how-to's JavaScript refresh handler, its application part filled in."""
    blocks = [
        block.body
        for block in directives(DOCS / "howto" / "authentication.rst")
        if block.argument == "javascript" and "getToken()" in block.body
    ]
    assert len(blocks) == 1
    return blocks[0].replace(
        "// ... the application's own messages",
        'resolve("echo:" + event.data + " over " + ws.protocol);',
    )


def page_script(refresh_handler: str) -> str:
    """Opens the feed with a token next to the subprotocol, says something after a while."""
    return f"""
    ([url, token, waitMs]) => new Promise(resolve => {{
        const getToken = async () => (await fetch("/token")).text();
        const ws = new WebSocket(url, ["feed.v1", "bearer." + token]);
        ws.addEventListener("open", () => setTimeout(() => ws.send("still here"), waitMs));
        ws.addEventListener("close", event => resolve("closed:" + event.code));
        {refresh_handler}
    }})
    """


@pytest.mark.parametrize("answers", [True, False], ids=["refreshes", "does-not-refresh"])
async def test_a_page_refreshes_its_token_with_the_documented_handler(
    browser: Browser, aiohttp_server: Any, answers: bool
) -> None:
    """The how-to's handler keeps a page connected past expiry; without it, 4401."""
    received: list[str] = []
    server = await aiohttp_server(refresh_app(received))
    handler = documented_refresh_handler() if answers else ""
    page = await browser.new_page()
    try:
        await page.goto(f"http://127.0.0.1:{server.port}/")
        expires_at = time.time() + AHEAD + 0.5
        first = jwt.encode({"sub": "alice", "exp": expires_at}, REFRESH_KEY, "HS256")
        wait_ms = int((expires_at + GRACE + 0.5 - time.time()) * 1000)
        result = await page.evaluate(
            page_script(handler), [f"ws://127.0.0.1:{server.port}/feed", first, wait_ms]
        )
    finally:
        await page.close()
    if answers:
        assert result == "echo:alice: still here over feed.v1"
        assert received == ["still here"]
    else:
        assert result == "closed:4401"
        assert received == []


MODULE_PAGE_SCRIPT = """
([url, token, waitMs, answers]) => import("/aioendpoints/client.js").then(
    ({ ResumingSocket }) => new Promise(resolve => {
        const getToken = async () => (await fetch("/token")).text();
        const refreshes = [];
        const socket = new ResumingSocket(url, {
            protocols: ["feed.v1", "bearer." + token],
            getToken: answers ? getToken : null,
        });
        socket.addEventListener("refreshed", event => refreshes.push(event.detail.expires_at));
        socket.addEventListener("open", () => setTimeout(() => socket.send("still here"), waitMs));
        socket.addEventListener("message", event => {
            socket.close();
            resolve({ result: "echo:" + event.detail.data, refreshes });
        });
        socket.addEventListener("close", event => {
            socket.close();
            resolve({ result: "closed:" + event.detail.code, refreshes });
        });
        socket.connect();
    }))
"""


@pytest.mark.parametrize("answers", [True, False], ids=["get-token", "no-get-token"])
async def test_the_browser_module_answers_refreshes_with_get_token(
    browser: Browser, aiohttp_server: Any, answers: bool
) -> None:
    """The module, given getToken(), refreshes by itself past expiry; without it, 4401."""
    received: list[str] = []
    server = await aiohttp_server(refresh_app(received))
    page = await browser.new_page()
    try:
        await page.goto(f"http://127.0.0.1:{server.port}/")
        expires_at = time.time() + AHEAD + 0.5
        first = jwt.encode({"sub": "alice", "exp": expires_at}, REFRESH_KEY, "HS256")
        wait_ms = int((expires_at + GRACE + 0.5 - time.time()) * 1000)
        outcome = await page.evaluate(
            MODULE_PAGE_SCRIPT,
            [f"ws://127.0.0.1:{server.port}/feed", first, wait_ms, answers],
        )
    finally:
        await page.close()
    if answers:
        assert outcome["result"] == "echo:alice: still here"
        assert received == ["still here"]
        # The server took the new token: its expiry is the fresh one's (an hour ahead).
        assert len(outcome["refreshes"]) == 1
        assert outcome["refreshes"][0] > expires_at + 600
    else:
        assert outcome == {"result": "closed:4401", "refreshes": []}
        assert received == []
