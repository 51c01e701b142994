"""Authentication before the upgrade: each token source, each way a credential goes wrong."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import jwt
import pytest
from aiohttp import WSServerHandshakeError, web
from aiohttp.test_utils import TestClient

import aioendpoints
from aioendpoints import WebSocket, WebSocketRoutes
from aioendpoints.auth import (
    AuthenticationFailed,
    BearerToken,
    CookieToken,
    PermissionDenied,
    Principal,
    QueryToken,
    StaticTokens,
    SubprotocolToken,
    TokenAuth,
    TokenSource,
)
from tests.conftest import ModeClient

SIGNING_KEY = "test-signing-key-0123456789abcdef"
OTHER_KEY = "an-attackers-key-0123456789abcdef"
REVOKED: set[str] = set()
BANNED = {"mallory"}


def token_for(
    subject: str, *, lifetime: float = 3600, key: str = SIGNING_KEY, token_id: str = "t1"
) -> str:
    """A signed JWT (HS256) for ``subject``."""
    claims = {"sub": subject, "exp": int(time.time() + lifetime), "jti": token_id}
    return jwt.encode(claims, key, algorithm="HS256")


def verify(token: str) -> Principal | None:
    """The tests' token check: PyJWT's signature and expiry, a revocation list, a ban list."""
    try:
        claims = jwt.decode(token, SIGNING_KEY, algorithms=["HS256"])
    except jwt.ExpiredSignatureError:
        raise AuthenticationFailed("Credential expired") from None
    except jwt.InvalidTokenError:
        return None
    if claims["jti"] in REVOKED:
        raise AuthenticationFailed("Credential revoked")
    if claims["sub"] in BANNED:
        raise PermissionDenied("Banned")
    return Principal(claims["sub"], expires_at=claims["exp"])


@dataclass(frozen=True)
class Source:
    """A token source, and how a client sends a token through it."""

    name: str
    source: TokenSource

    def handshake(self, token: str) -> dict[str, Any]:
        """``ws_connect`` keyword arguments that carry ``token``."""
        if self.name == "bearer":
            return {"headers": {"Authorization": f"Bearer {token}"}}
        if self.name == "query":
            return {"params": {"access_token": token}}
        if self.name == "cookie":
            return {"headers": {"Cookie": f"session={token}"}}
        return {"protocols": ("chat", f"bearer.{token}")}

    def malformed(self) -> dict[str, Any]:
        """A handshake whose credential is malformed for this source."""
        if self.name == "bearer":
            return {"headers": {"Authorization": "Basic YWxpY2U6c2VjcmV0"}}
        if self.name == "query":
            return {"params": [("access_token", "a"), ("access_token", "b")]}
        if self.name == "cookie":
            return {"headers": {"Cookie": "session=not-a-jwt"}}
        return {"protocols": ("chat", "bearer.a", "bearer.b")}


SOURCES = [
    Source("bearer", BearerToken()),
    Source("query", QueryToken("access_token")),
    Source("cookie", CookieToken("session")),
    Source("subprotocol", SubprotocolToken("bearer.")),
]


def auth_app(
    *, setup_options: dict[str, Any] | None = None, **route_options: Any
) -> tuple[web.Application, list[Any]]:
    """An app whose /ws route greets its principal; the list records the views that ran."""
    ran: list[Any] = []
    routes = WebSocketRoutes()

    @routes.websocket_route("/ws", protocols=["chat"], **route_options)
    async def greet(ws: WebSocket) -> None:
        ran.append(ws.principal)
        await ws.accept()
        await ws.send(f"hello {getattr(ws.principal, 'id', ws.principal)}")
        await ws.close()

    app = web.Application()
    aioendpoints.setup(app, **(setup_options or {}))
    app.add_routes(routes)
    return app, ran


async def refused(client: TestClient[Any, Any], **handshake: Any) -> WSServerHandshakeError:
    """The handshake error of a connection attempt that must be refused."""
    with pytest.raises(WSServerHandshakeError) as refusal:
        await client.ws_connect("/ws", **handshake)
    return refusal.value


@pytest.fixture(params=SOURCES, ids=lambda source: source.name)
def source(request: pytest.FixtureRequest) -> Source:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
async def client(source: Source, each_mode_client: ModeClient) -> TestClient[Any, Any]:
    """A client of the app, served in each server mode (a refusal is an ending too)."""
    app, _ = auth_app(authenticate=TokenAuth(verify, source.source))
    return await each_mode_client(app)


async def test_valid_token_connects(source: Source, client: TestClient[Any, Any]) -> None:
    """A valid signed token connects, and the view sees its principal."""
    async with client.ws_connect("/ws", **source.handshake(token_for("alice"))) as ws:
        assert await ws.receive_str() == "hello alice"


async def test_missing_token_gets_401(source: Source, aiohttp_client: Any) -> None:
    """No credential: HTTP 401 with a challenge, and the view never runs."""
    app, ran = auth_app(authenticate=TokenAuth(verify, source.source))
    client = await aiohttp_client(app)
    error = await refused(client, protocols=("chat",))
    assert error.status == 401
    assert error.headers is not None
    assert error.headers["WWW-Authenticate"] == "Bearer"
    assert ran == []


async def test_malformed_token_gets_401(source: Source, client: TestClient[Any, Any]) -> None:
    """A malformed credential is refused with 401."""
    assert (await refused(client, **source.malformed())).status == 401


async def test_forged_token_gets_401(source: Source, client: TestClient[Any, Any]) -> None:
    """A token signed with another key is refused with 401."""
    forged = token_for("alice", key=OTHER_KEY)
    assert (await refused(client, **source.handshake(forged))).status == 401


async def test_expired_token_gets_401(source: Source, client: TestClient[Any, Any]) -> None:
    """A token past its expiry is refused with 401."""
    expired = token_for("alice", lifetime=-60)
    assert (await refused(client, **source.handshake(expired))).status == 401


async def test_revoked_token_gets_401(source: Source, client: TestClient[Any, Any]) -> None:
    """A revoked token is refused with 401, while a fresh one for the same user connects."""
    REVOKED.add("revoked-1")
    try:
        revoked = token_for("alice", token_id="revoked-1")
        assert (await refused(client, **source.handshake(revoked))).status == 401
        async with client.ws_connect("/ws", **source.handshake(token_for("alice"))) as ws:
            assert await ws.receive_str() == "hello alice"
    finally:
        REVOKED.discard("revoked-1")


async def test_known_but_not_allowed_gets_403(source: Source, client: TestClient[Any, Any]) -> None:
    """A valid token for a principal the check refuses gets 403, not 401."""
    assert (await refused(client, **source.handshake(token_for("mallory")))).status == 403


async def test_token_is_never_echoed_as_the_subprotocol(aiohttp_client: Any) -> None:
    """The server selects the real subprotocol, never the one carrying the token."""
    app, _ = auth_app(authenticate=TokenAuth(verify, SubprotocolToken()))
    client = await aiohttp_client(app)
    token = token_for("alice")
    async with client.ws_connect("/ws", protocols=(f"bearer.{token}", "chat")) as ws:
        assert ws.protocol == "chat"
        assert await ws.receive_str() == "hello alice"


async def test_a_view_choosing_a_subprotocol_never_sees_the_token(
    aiohttp_client: Any,
) -> None:
    """ws.subprotocols leaves the token out, so accept(ws.subprotocols[0]) cannot echo it."""
    offered: list[tuple[str, ...]] = []
    routes = WebSocketRoutes()

    @routes.websocket_route("/ws", authenticate=TokenAuth(verify, SubprotocolToken()))
    async def first_choice(ws: WebSocket) -> None:
        offered.append(ws.subprotocols)
        await ws.accept(ws.subprotocols[0])
        await ws.send(f"speaking {ws.subprotocol}")

    app = web.Application()
    aioendpoints.setup(app)
    app.add_routes(routes)
    client = await aiohttp_client(app)
    token = token_for("alice")
    async with client.ws_connect("/ws", protocols=(f"bearer.{token}", "chat.v2")) as ws:
        assert ws.protocol == "chat.v2"
        assert await ws.receive_str() == "speaking chat.v2"
    assert offered == [("chat.v2",)]


async def test_a_principal_that_expired_is_refused_whatever_the_check_says(
    aiohttp_client: Any,
) -> None:
    """A check that returns an expired principal still gets the client a 401."""
    app, ran = auth_app(authenticate=lambda request: Principal("alice", expires_at=time.time()))
    client = await aiohttp_client(app)
    error = await refused(client)
    assert (error.status, ran) == (401, [])


async def test_sync_and_async_checks_and_any_principal(aiohttp_client: Any) -> None:
    """A plain function or coroutine function is a check; its return value is the principal."""

    async def by_header(request: web.Request) -> str | None:
        return request.headers.get("X-User")

    for check in (by_header, lambda request: request.headers.get("X-User")):
        app, ran = auth_app(authenticate=check)
        client = await aiohttp_client(app)
        async with client.ws_connect("/ws", headers={"X-User": "bob"}) as ws:
            assert await ws.receive_str() == "hello bob"
        assert (await refused(client)).status == 401
        assert ran == ["bob"]


async def test_http_exceptions_from_the_check_pass_through(aiohttp_client: Any) -> None:
    """A check may refuse with any aiohttp HTTP error of its choice."""

    def busy(request: web.Request) -> None:
        raise web.HTTPTooManyRequests(text="slow down")

    app, _ = auth_app(authenticate=busy)
    client = await aiohttp_client(app)
    assert (await refused(client)).status == 429


async def test_setup_default_applies_and_a_route_overrides_it(aiohttp_client: Any) -> None:
    """setup(authenticate=...) guards every route without its own check."""
    keys = StaticTokens({"key-a": "service-a"})
    routes = WebSocketRoutes()

    @routes.websocket_route("/default")
    async def default(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send(f"default {ws.principal}")

    @routes.websocket_route("/own", authenticate=lambda request: "anyone")
    async def own(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send(f"own {ws.principal}")

    app = web.Application()
    aioendpoints.setup(app, authenticate=TokenAuth(keys))
    app.add_routes(routes)
    client = await aiohttp_client(app)
    with pytest.raises(WSServerHandshakeError) as refusal:
        await client.ws_connect("/default", headers={"Authorization": "Bearer key-b"})
    assert refusal.value.status == 401
    async with client.ws_connect("/default", headers={"Authorization": "Bearer key-a"}) as ws:
        assert await ws.receive_str() == "default service-a"
    async with client.ws_connect("/own") as ws:
        assert await ws.receive_str() == "own anyone"


async def test_origin_check_runs_before_the_credential_check(aiohttp_client: Any) -> None:
    """A cross-site request is refused with 403 before its credential is even looked at."""
    checked: list[str] = []

    def check(request: web.Request) -> str:
        checked.append(request.path)
        return "alice"

    app, ran = auth_app(authenticate=check)
    client = await aiohttp_client(app)
    error = await refused(client, headers={"Origin": "https://evil.example"})
    assert (error.status, checked, ran) == (403, [], [])


def test_static_tokens_compare_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """StaticTokens compares with hmac.compare_digest, against every known token."""
    import hmac

    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    keys = StaticTokens({"first": 1, "second": 2})
    assert keys("first") == 1
    assert keys("nope") is None
    assert [pair[0] for pair in compared] == [b"first", b"second", b"first", b"second"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"authenticate": "alice"}, "authenticate must be callable, got 'alice'"),
        ({"group_permission": 3}, "group_permission must be callable, got 3"),
    ],
)
def test_options_that_are_not_callable_are_refused(options: dict[str, Any], message: str) -> None:
    """The auth options are checked when the route is declared, and in setup()."""
    with pytest.raises(TypeError, match=message):
        aioendpoints.websocket_handler(_view, **options)
    with pytest.raises(TypeError, match=message):
        aioendpoints.setup(web.Application(), **options)


async def _view(ws: WebSocket) -> None:
    await ws.accept()


def test_token_auth_checks_its_arguments() -> None:
    """TokenAuth names a bad verify, source or timing."""
    with pytest.raises(TypeError, match="verify must be callable"):
        TokenAuth("secret")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="token source must be callable"):
        TokenAuth(verify, "Authorization")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="refresh_grace must be a non-negative number"):
        TokenAuth(verify, refresh_grace=-1)


async def test_the_connections_user_is_the_principals_id(aiohttp_client: Any) -> None:
    """ws.user comes from the principal, so send_to_user() reaches an authenticated user."""
    users: list[str | None] = []
    routes = WebSocketRoutes()

    @routes.websocket_route("/ws", authenticate=TokenAuth(verify))
    async def listen(ws: WebSocket) -> None:
        await ws.accept()
        users.append(ws.user)
        await ws.send("ready")
        await ws.receive()

    app = web.Application()
    aioendpoints.setup(app)
    app.add_routes(routes)
    client = await aiohttp_client(app)
    headers = {"Authorization": f"Bearer {token_for('alice')}"}
    async with client.ws_connect("/ws", headers=headers) as ws:
        assert await ws.receive_str() == "ready"
        assert await aioendpoints.send_to_user(app, "alice", "for alice") == 1
        assert await ws.receive_str() == "for alice"
    assert users == ["alice"]
