"""Handshake refusals and the origin check against cross-site WebSocket hijacking."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import WSServerHandshakeError, web
from aiohttp.test_utils import TestClient

import aioendpoints
from aioendpoints import WebSocket, WebSocketEndpoint, WebSocketRoutes
from aioendpoints.origins import OriginPolicy

FOREIGN = "https://evil.example"


def echo_app(**route_options: Any) -> tuple[web.Application, list[str]]:
    """An app with one echo route; the list records each connection the view accepted."""
    accepted: list[str] = []
    routes = WebSocketRoutes()

    @routes.websocket_route("/ws", **route_options)
    async def echo(ws: WebSocket) -> None:
        await ws.accept()
        accepted.append(ws.headers.get("Origin", ""))
        await ws.send(await ws.receive())

    app = web.Application()
    app.add_routes(routes)
    return app, accepted


async def connects(client: TestClient[Any, Any], headers: dict[str, str]) -> bool:
    """Whether a handshake with ``headers`` succeeds and echoes; False on HTTP 403."""
    try:
        ws = await client.ws_connect("/ws", headers=headers)
    except WSServerHandshakeError as error:
        if error.status != 403:
            raise
        return False
    await ws.send_str("hello")
    assert await ws.receive_str() == "hello"
    await ws.close()
    return True


def own_origin(client: TestClient[Any, Any]) -> str:
    return f"http://{client.host}:{client.port}"


async def test_client_without_origin_passes(aiohttp_client: Any) -> None:
    """A non-browser client, which sends no Origin, connects."""
    app, _ = echo_app()
    client = await aiohttp_client(app)
    assert await connects(client, {})


async def test_same_origin_passes(aiohttp_client: Any) -> None:
    """An Origin equal to the server's own scheme, host and port connects."""
    app, _ = echo_app()
    client = await aiohttp_client(app)
    assert await connects(client, {"Origin": own_origin(client)})


async def test_foreign_origin_gets_403_before_the_view_runs(aiohttp_client: Any) -> None:
    """A cross-site Origin is refused with HTTP 403 and the view never runs."""
    app, accepted = echo_app()
    client = await aiohttp_client(app)
    assert not await connects(client, {"Origin": FOREIGN})
    assert accepted == []


async def test_same_host_other_scheme_is_cross_origin(aiohttp_client: Any) -> None:
    """The check is scheme-aware: https on a plain-http server's host is another origin."""
    app, _ = echo_app()
    client = await aiohttp_client(app)
    assert not await connects(client, {"Origin": f"https://{client.host}:{client.port}"})


async def test_same_host_other_port_is_cross_origin(aiohttp_client: Any) -> None:
    """The check is port-aware."""
    app, _ = echo_app()
    client = await aiohttp_client(app)
    assert not await connects(client, {"Origin": f"http://{client.host}:{client.port + 1}"})


async def test_origin_null_is_refused(aiohttp_client: Any) -> None:
    """Sandboxed pages and file:// send Origin: null, which is refused unless listed."""
    app, _ = echo_app()
    client = await aiohttp_client(app)
    assert not await connects(client, {"Origin": "null"})


async def test_route_allowed_origins_let_listed_origins_in(aiohttp_client: Any) -> None:
    """An origin listed in the route's allowed_origins connects; others still get 403."""
    app, _ = echo_app(allowed_origins=["https://app.example"])
    client = await aiohttp_client(app)
    assert await connects(client, {"Origin": "https://app.example"})
    assert await connects(client, {"Origin": "HTTPS://APP.EXAMPLE:443"})
    assert not await connects(client, {"Origin": FOREIGN})


async def test_subdomain_pattern(aiohttp_client: Any) -> None:
    """https://*.example.com allows subdomains of example.com, and not the lookalikes."""
    app, _ = echo_app(allowed_origins=["https://*.example.com"])
    client = await aiohttp_client(app)
    assert await connects(client, {"Origin": "https://chat.example.com"})
    assert not await connects(client, {"Origin": "https://chat.example.com.evil.example"})
    assert not await connects(client, {"Origin": "https://evilexample.com"})
    assert not await connects(client, {"Origin": "http://chat.example.com"})


async def test_star_allows_any_origin(aiohttp_client: Any) -> None:
    """allowed_origins="*" turns the check off for the route."""
    app, _ = echo_app(allowed_origins="*")
    client = await aiohttp_client(app)
    assert await connects(client, {"Origin": FOREIGN, "Sec-Fetch-Site": "cross-site"})


async def test_setup_sets_the_app_default(aiohttp_client: Any) -> None:
    """aioendpoints.setup(app, allowed_origins=...) applies to routes without their own."""
    app, _ = echo_app()
    aioendpoints.setup(app, allowed_origins=["https://app.example"])
    client = await aiohttp_client(app)
    assert await connects(client, {"Origin": "https://app.example"})
    assert not await connects(client, {"Origin": FOREIGN})


async def test_route_setting_overrides_the_app_default(aiohttp_client: Any) -> None:
    """A route's allowed_origins=[] keeps it same-origin even when the app allows "*"."""
    app, _ = echo_app(allowed_origins=[])
    aioendpoints.setup(app, allowed_origins="*")
    client = await aiohttp_client(app)
    assert not await connects(client, {"Origin": FOREIGN})
    assert await connects(client, {"Origin": own_origin(client)})


async def test_app_default_reaches_sub_applications(aiohttp_client: Any) -> None:
    """Routes in a sub-application use the parent's default from setup()."""
    sub, _ = echo_app()
    app = web.Application()
    aioendpoints.setup(app, allowed_origins=["https://app.example"])
    app.add_subapp("/sub", sub)
    client = await aiohttp_client(app)
    ws = await client.ws_connect("/sub/ws", headers={"Origin": "https://app.example"})
    await ws.close()
    with pytest.raises(WSServerHandshakeError):
        await client.ws_connect("/sub/ws", headers={"Origin": FOREIGN})


async def test_sec_fetch_site_same_origin_passes(aiohttp_client: Any) -> None:
    """A browser's Sec-Fetch-Site: same-origin passes, as behind a TLS-terminating proxy."""
    app, _ = echo_app()
    client = await aiohttp_client(app)
    headers = {"Origin": "https://public.example", "Sec-Fetch-Site": "same-origin"}
    assert await connects(client, headers)


async def test_sec_fetch_site_none_passes(aiohttp_client: Any) -> None:
    """Sec-Fetch-Site: none (a request the user started) passes."""
    app, _ = echo_app()
    client = await aiohttp_client(app)
    assert await connects(client, {"Sec-Fetch-Site": "none"})


async def test_sec_fetch_site_cross_site_is_refused(aiohttp_client: Any) -> None:
    """Sec-Fetch-Site: cross-site is refused even if Origin looks like the server's own."""
    app, _ = echo_app()
    client = await aiohttp_client(app)
    headers = {"Origin": own_origin(client), "Sec-Fetch-Site": "cross-site"}
    assert not await connects(client, headers)
    assert not await connects(client, {"Sec-Fetch-Site": "cross-site"})


async def test_sec_fetch_site_same_site_needs_an_allowed_origin(aiohttp_client: Any) -> None:
    """Sec-Fetch-Site: same-site is another origin: refused unless it is allowed."""
    app, _ = echo_app(allowed_origins=["https://www.example.com"])
    client = await aiohttp_client(app)
    allowed = {"Origin": "https://www.example.com", "Sec-Fetch-Site": "same-site"}
    other = {"Origin": "https://blog.example.com", "Sec-Fetch-Site": "same-site"}
    assert await connects(client, allowed)
    assert not await connects(client, other)


async def test_origin_check_covers_endpoints(aiohttp_client: Any) -> None:
    """Endpoint classes get the same origin check, before on_connect."""
    connected: list[bool] = []
    routes = WebSocketRoutes()

    @routes.websocket_route("/ws")
    class Endpoint(WebSocketEndpoint):
        async def on_connect(self, ws: WebSocket) -> None:
            connected.append(True)
            await ws.accept()

    app = web.Application()
    app.add_routes(routes)
    client = await aiohttp_client(app)
    with pytest.raises(WSServerHandshakeError) as refused:
        await client.ws_connect("/ws", headers={"Origin": FOREIGN})
    assert refused.value.status == 403
    assert connected == []


@pytest.mark.parametrize(
    "bad", ["example.com", "https://example.com/path", "https://", "ftp//x", "https://a.b?q=1"]
)
def test_malformed_allowed_origin_is_refused_at_registration(bad: str) -> None:
    """A malformed allowed origin raises ValueError naming it when the route is declared."""
    with pytest.raises(ValueError, match="allowed_origins"):
        echo_app(allowed_origins=[bad])


def test_allowed_origins_must_be_a_list_not_a_string() -> None:
    """A single origin as a bare string is a mistake that is caught at registration."""
    with pytest.raises(TypeError, match="list of origins"):
        OriginPolicy.from_origins("https://example.com")


async def test_reject_sends_the_http_error(aiohttp_client: Any) -> None:
    """ws.reject(401, reason, headers) answers that HTTP error instead of upgrading."""
    routes = WebSocketRoutes()

    @routes.websocket_route("/ws")
    async def private(ws: WebSocket) -> None:
        if ws.headers.get("Authorization") != "Bearer secret":
            ws.reject(401, "token required", headers={"WWW-Authenticate": "Bearer"})
        await ws.accept()
        await ws.close()

    app = web.Application()
    app.add_routes(routes)
    client = await aiohttp_client(app)
    with pytest.raises(WSServerHandshakeError) as refused:
        await client.ws_connect("/ws")
    assert refused.value.status == 401
    assert refused.value.headers is not None
    assert refused.value.headers["WWW-Authenticate"] == "Bearer"
    ws = await client.ws_connect("/ws", headers={"Authorization": "Bearer secret"})
    await ws.close()


@pytest.mark.parametrize("error", [web.HTTPForbidden, web.HTTPUnauthorized])
async def test_http_error_in_on_connect_is_a_real_response(
    aiohttp_client: Any, error: type[web.HTTPException]
) -> None:
    """aiohttp's HTTPForbidden/HTTPUnauthorized raised in on_connect become that response."""
    routes = WebSocketRoutes()

    @routes.websocket_route("/ws")
    class Guarded(WebSocketEndpoint):
        async def on_connect(self, ws: WebSocket) -> None:
            raise error(text="go away")

    app = web.Application()
    app.add_routes(routes)
    client = await aiohttp_client(app)
    with pytest.raises(WSServerHandshakeError) as refused:
        await client.ws_connect("/ws")
    assert refused.value.status == error.status_code
