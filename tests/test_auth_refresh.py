"""Expiry and refresh: a connection asks for a new credential, or closes with 4401."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import jwt
import pytest
from aiohttp import WSMsgType, web

import aioendpoints
from aioendpoints import WebSocket, WebSocketRoutes
from aioendpoints.auth import (
    CREDENTIAL_EXPIRED,
    Principal,
    QueryToken,
    TokenAuth,
    refreshed_token,
)
from tests.conftest import ModeServer
from tests.server_modes import assert_quiet_ending

KEY = "refresh-test-key-0123456789abcdef"
#: Seconds before expiry that the server asks; seconds after expiry that it still waits.
#: Tokens live AHEAD + 0.5 s: the server asks after half a second, and the handshake has
#: three seconds to happen in, even on a loaded machine.
AHEAD, GRACE = 2.5, 1.0


def token_for(subject: str, lifetime: float, *, key: str = KEY) -> str:
    return jwt.encode({"sub": subject, "exp": time.time() + lifetime}, key, algorithm="HS256")


def verify(token: str) -> Principal | None:
    try:
        claims = jwt.decode(token, KEY, algorithms=["HS256"])
    except jwt.InvalidTokenError:
        return None
    return Principal(claims["sub"], expires_at=claims["exp"])


def refresh_app(received: list[Any]) -> web.Application:
    """An echo route behind a JWT in the query; ``received`` records what the view got."""
    routes = WebSocketRoutes()
    auth = TokenAuth(verify, QueryToken(), refresh_ahead=AHEAD, refresh_grace=GRACE)

    @routes.websocket_route("/echo", authenticate=auth, caught_close_codes="all")
    async def echo(ws: WebSocket) -> None:
        await ws.accept()
        async for message in ws:
            received.append(message)
            await ws.send(f"{ws.principal.id}: {message}")

    app = web.Application()
    aioendpoints.setup(app)
    app.add_routes(routes)
    return app


async def next_message(ws: aiohttp.ClientWebSocketResponse) -> aiohttp.WSMessage:
    return await asyncio.wait_for(ws.receive(), timeout=15)


@pytest.mark.slow
async def test_refresh_accepted_and_the_connection_lives_on(
    each_mode_server: ModeServer,
) -> None:
    """Refresh asked before expiry, answered, acknowledged: open long after the old expiry."""
    received: list[Any] = []
    base = str((await each_mode_server(refresh_app(received))).make_url("")).rstrip("/")
    expires_at = time.time() + AHEAD + 0.5
    first = jwt.encode({"sub": "alice", "exp": expires_at}, KEY, algorithm="HS256")
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(f"{base}/echo?access_token={first}")
        asking = json.loads((await next_message(ws)).data)
        assert asking == {"aioendpoints": "refresh", "expires_at": pytest.approx(expires_at)}
        assert time.time() < expires_at
        await ws.send_json({"aioendpoints": "refresh", "token": token_for("alice", 3600)})
        answer = json.loads((await next_message(ws)).data)
        assert answer["aioendpoints"] == "refreshed"
        assert answer["expires_at"] > expires_at + 3000
        # Past the old expiry and its grace period, the connection still serves.
        await asyncio.sleep(max(expires_at + GRACE + 0.3 - time.time(), 0))
        await ws.send_str("still here")
        assert (await next_message(ws)).data == "alice: still here"
        await ws.close()
    assert received == ["still here"]  # The view never saw a refresh message.


@pytest.mark.slow
async def test_no_refresh_closes_with_4401_at_the_end_of_the_grace_period(
    each_mode_server: ModeServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Without an answer, the server closes with 4401 "Credential expired" after the grace."""
    received: list[Any] = []
    base = str((await each_mode_server(refresh_app(received))).make_url("")).rstrip("/")
    expires_at = time.time() + AHEAD + 0.5
    token = jwt.encode({"sub": "alice", "exp": expires_at}, KEY, algorithm="HS256")
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(f"{base}/echo?access_token={token}")
        asking = json.loads((await next_message(ws)).data)
        assert asking["aioendpoints"] == "refresh"
        closing = await next_message(ws)
        closed_at = time.time()
        assert (closing.type, closing.data, closing.extra) == (WSMsgType.CLOSE, *CREDENTIAL_EXPIRED)
        assert CREDENTIAL_EXPIRED == (4401, "Credential expired")
        # Timers never fire early: it was not closed before the grace period ended.
        assert closed_at >= expires_at + GRACE - 0.05
    assert received == []
    assert_quiet_ending(caplog)


@pytest.mark.parametrize(
    ("new_token", "code"),
    [
        (lambda: token_for("alice", 3600, key="forged-key-0123456789abcdef01234"), 4401),
        (lambda: token_for("alice", -10), 4401),
        (lambda: "", 4401),
        (lambda: token_for("mallory", 3600), 4403),
    ],
    ids=["forged", "expired", "empty", "another-principal"],
)
async def test_a_refused_refresh_closes_at_once(
    each_mode_server: ModeServer, new_token: Callable[[], str], code: int
) -> None:
    """A forged, expired or empty token closes with 4401; another principal's with 4403."""
    received: list[Any] = []
    token = token_for("alice", AHEAD + 30)
    base = str((await each_mode_server(refresh_app(received))).make_url("")).rstrip("/")
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(f"{base}/echo?access_token={token}")
        await ws.send_json({"aioendpoints": "refresh", "token": new_token()})
        closing = await next_message(ws)
        assert (closing.type, closing.data) == (WSMsgType.CLOSE, code)
    assert received == []


async def test_principal_without_expiry_gets_no_refresh(aiohttp_client: Any) -> None:
    """A principal without expires_at is never asked; its refresh-looking text reaches the view."""
    routes = WebSocketRoutes()

    @routes.websocket_route("/echo", authenticate=lambda request: "alice")
    async def echo(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send(await ws.receive())

    app = web.Application()
    aioendpoints.setup(app)
    app.add_routes(routes)
    client = await aiohttp_client(app)
    async with client.ws_connect("/echo") as ws:
        text = '{"aioendpoints": "refresh", "token": "x"}'
        await ws.send_str(text)
        assert await ws.receive_str() == text


def plain_app(check: Any) -> web.Application:
    """An echo route behind ``check``, whose principals are plain strings with an expiry."""
    routes = WebSocketRoutes()

    @routes.websocket_route("/echo", authenticate=check)
    async def echo(ws: WebSocket) -> None:
        await ws.accept()
        async for message in ws:
            await ws.send(message)

    app = web.Application()
    aioendpoints.setup(app)
    app.add_routes(routes)
    return app


class Named(str):
    """A string principal that expires."""

    expires_at = time.time() + 3600


async def test_refresh_cannot_switch_a_string_principal(aiohttp_client: Any) -> None:
    """A principal without an id attribute is compared as it is: alice cannot become bob."""

    def check(request: web.Request) -> Named | None:
        token = refreshed_token(request) or request.query.get("user")
        return None if token is None else Named(token)

    client = await aiohttp_client(plain_app(check))
    ws = await client.ws_connect("/echo?user=alice")
    await ws.send_json({"aioendpoints": "refresh", "token": "alice"})
    assert json.loads(await ws.receive_str())["aioendpoints"] == "refreshed"
    await ws.send_json({"aioendpoints": "refresh", "token": "bob"})
    closing = await ws.receive()
    assert (closing.type, closing.data, closing.extra) == (
        WSMsgType.CLOSE,
        4403,
        "Credential of another principal",
    )


async def test_an_http_error_from_the_check_closes_with_4000_plus_its_status(
    aiohttp_client: Any,
) -> None:
    """A check that answers a refresh with HTTP 429 closes the connection with 4429."""

    def check(request: web.Request) -> Named:
        if refreshed_token(request) is not None:
            raise web.HTTPTooManyRequests(text="slow down")
        return Named("alice")

    client = await aiohttp_client(plain_app(check))
    ws = await client.ws_connect("/echo")
    await ws.send_json({"aioendpoints": "refresh", "token": "again"})
    closing = await ws.receive()
    assert (closing.type, closing.data, closing.extra) == (WSMsgType.CLOSE, 4429, "slow down")
