"""The checks for apps that use aiohttp-session and aiohttp-security."""

from __future__ import annotations

from typing import Any

import aiohttp_security
import aiohttp_session
import pytest
from aiohttp import WSServerHandshakeError, web
from aiohttp_session import SimpleCookieStorage

import aioendpoints
from aioendpoints import WebSocket, WebSocketRoutes
from aioendpoints.auth import (
    GroupPermissionDenied,
    security_group_permission,
    security_identity,
    session_identity,
)

# aiohttp-session 2.12 and aiohttp-security 0.5 keep their state under string keys, which
# aiohttp 3.14 warns about; the warning is theirs, not ours.
pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")


async def log_in(request: web.Request) -> web.Response:
    """Puts the ``user`` query parameter into the session, as a login form would."""
    session = await aiohttp_session.new_session(request)
    session["user"] = request.query["user"]
    return web.Response(text="logged in")


def app_with(authenticate: Any, *middlewares: Any) -> web.Application:
    routes = WebSocketRoutes()

    @routes.websocket_route("/ws", authenticate=authenticate)
    async def whoami(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send(f"you are {ws.principal}")

    app = web.Application(middlewares=middlewares)
    aioendpoints.setup(app)
    app.router.add_get("/login", log_in)
    app.add_routes(routes)
    return app


async def test_session_identity(aiohttp_client: Any) -> None:
    """The principal is the session's user: 401 before logging in, the user after."""
    storage = SimpleCookieStorage(cookie_name="session")
    app = app_with(session_identity("user"), aiohttp_session.session_middleware(storage))
    client = await aiohttp_client(app)
    with pytest.raises(WSServerHandshakeError) as refusal:
        await client.ws_connect("/ws")
    assert refusal.value.status == 401
    assert (await client.get("/login", params={"user": "alice"})).status == 200
    async with client.ws_connect("/ws") as ws:
        assert await ws.receive_str() == "you are alice"


class RolePolicy(aiohttp_security.AbstractAuthorizationPolicy):
    """alice may chat; bob is known but may not."""

    async def authorized_userid(self, identity: str) -> str | None:
        return identity if identity in ("alice", "bob") else None

    async def permits(self, identity: Any, permission: str, context: Any = None) -> bool:
        return bool(identity == "alice" and permission == "chat")


async def test_security_identity_and_permission(aiohttp_client: Any) -> None:
    """aiohttp-security's policies: 401 for nobody, 403 without the permission, else in."""
    storage = SimpleCookieStorage(cookie_name="session")
    app = app_with(security_identity("chat"), aiohttp_session.session_middleware(storage))
    aiohttp_security.setup(app, aiohttp_security.SessionIdentityPolicy("user"), RolePolicy())
    client = await aiohttp_client(app)
    for user, status in ((None, 401), ("eve", 401), ("bob", 403)):
        if user is not None:
            await client.get("/login", params={"user": user})
        with pytest.raises(WSServerHandshakeError) as refusal:
            await client.ws_connect("/ws")
        assert refusal.value.status == status, user
    await client.get("/login", params={"user": "alice"})
    async with client.ws_connect("/ws") as ws:
        assert await ws.receive_str() == "you are alice"


class GroupPolicy(aiohttp_security.AbstractAuthorizationPolicy):
    """Everyone may be in the lobby; only alice among the staff."""

    async def authorized_userid(self, identity: str) -> str | None:
        return identity

    async def permits(self, identity: Any, permission: str, context: Any = None) -> bool:
        return permission == "group:lobby" or (identity, permission) == ("alice", "group:staff")


async def test_security_group_permission(aiohttp_client: Any) -> None:
    """Joining asks the authorization policy for "group:<name>"; a refusal is catchable."""
    routes = WebSocketRoutes()

    @routes.websocket_route("/join/{group}")
    async def join(ws: WebSocket, group: str) -> None:
        await ws.accept()
        try:
            await ws.join(group)
        except GroupPermissionDenied:
            await ws.send(f"{ws.principal} refused {group}")
        else:
            await ws.send(f"{ws.principal} joined {group}")

    app = web.Application()
    aioendpoints.setup(
        app,
        authenticate=lambda request: request.headers.get("X-User"),
        group_permission=security_group_permission(GroupPolicy()),
    )
    app.add_routes(routes)
    client = await aiohttp_client(app)
    answers = []
    for user, group in (("bob", "lobby"), ("bob", "staff"), ("alice", "staff")):
        async with client.ws_connect(f"/join/{group}", headers={"X-User": user}) as ws:
            answers.append(await ws.receive_str())
    assert answers == ["bob joined lobby", "bob refused staff", "alice joined staff"]
