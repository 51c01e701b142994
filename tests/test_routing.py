"""Routing: the route table, route parameters, sub-apps, and checks at registration."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpClient

import aioendpoints
from aioendpoints import WebSocket, WebSocketEndpoint, WebSocketRoutes, websocket_handler

from .helpers import make_app

UPGRADE_HEADERS = {
    "Upgrade": "websocket",
    "Connection": "Upgrade",
    "Sec-WebSocket-Version": "13",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
}


async def echo_params(ws: WebSocket, **params: Any) -> None:
    await ws.accept()
    await ws.send_json({name: [type(value).__name__, value] for name, value in params.items()})


def test_route_table_is_a_sequence_of_route_definitions() -> None:
    """WebSocketRoutes is a Sequence of aiohttp route definitions; decorators return the view."""
    routes = WebSocketRoutes()
    decorated = routes.websocket_route("/a")(echo_params)
    assert decorated is echo_params
    assert isinstance(routes, Sequence)
    assert len(routes) == 1
    assert isinstance(routes[0], web.AbstractRouteDef)
    assert routes[0] in routes
    assert list(routes) == [routes[0]]


async def test_routes_join_an_existing_app_next_to_http_routes(
    aiohttp_client: AiohttpClient,
) -> None:
    """app.add_routes(routes) works in an app that already has HTTP routes."""
    http_routes = web.RouteTableDef()

    @http_routes.get("/health")
    async def health(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    routes = WebSocketRoutes()
    routes.websocket_route("/ws")(echo_params)
    app = web.Application()
    app.add_routes(http_routes)
    app.add_routes(routes)
    client = await aiohttp_client(app)
    assert await (await client.get("/health")).text() == "ok"
    async with client.ws_connect("/ws") as ws:
        assert await ws.receive_json(timeout=5) == {}


async def test_route_params_are_converted_by_annotation(aiohttp_client: AiohttpClient) -> None:
    """int, float, bool and str annotations convert the route's strings."""
    routes = WebSocketRoutes()
    seen: list[Any] = []

    @routes.websocket_route("/items/{item_id}/{price}/{active}/{label}")
    async def view(ws: WebSocket, item_id: int, price: float, active: bool, label: str) -> None:
        seen.extend([item_id, price, active, label, dict(ws.path_params)])
        await ws.accept()

    client = await aiohttp_client(make_app(routes))
    async with client.ws_connect("/items/42/9.5/true/blue") as ws:
        await ws.receive(timeout=5)
    assert seen == [
        42,
        9.5,
        True,
        "blue",
        {"item_id": 42, "price": 9.5, "active": True, "label": "blue"},
    ]


async def test_other_classes_convert_too(aiohttp_client: AiohttpClient) -> None:
    """An annotation such as uuid.UUID is called with the route's string."""
    routes = WebSocketRoutes()
    seen: list[Any] = []

    @routes.websocket_route("/sessions/{session}")
    async def view(ws: WebSocket, session: uuid.UUID) -> None:
        seen.append(session)
        await ws.accept()

    client = await aiohttp_client(make_app(routes))
    value = uuid.uuid4()
    async with client.ws_connect(f"/sessions/{value}") as ws:
        await ws.receive(timeout=5)
    assert seen == [value]


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/items/abc", "Invalid route parameter 'item_id': 'abc' is not a valid int"),
        ("/flags/maybe", "Invalid route parameter 'flag': 'maybe' is not a valid bool"),
    ],
)
async def test_unconvertible_route_param_is_http_400_before_upgrade(
    aiohttp_client: AiohttpClient, path: str, message: str
) -> None:
    """A value that does not convert rejects the handshake with 400; the view never runs."""
    routes = WebSocketRoutes()
    calls: list[Any] = []

    @routes.websocket_route("/items/{item_id}")
    async def item(ws: WebSocket, item_id: int) -> None:
        calls.append(item_id)

    @routes.websocket_route("/flags/{flag}")
    async def flag(ws: WebSocket, flag: bool) -> None:
        calls.append(flag)

    client = await aiohttp_client(make_app(routes))
    response = await client.get(path, headers=UPGRADE_HEADERS)
    assert response.status == 400
    assert await response.text() == message
    assert calls == []


async def test_plain_http_get_gets_426_with_a_clear_message(
    aiohttp_client: AiohttpClient,
) -> None:
    """A GET without the upgrade is answered 426 Upgrade Required, not a traceback."""
    routes = WebSocketRoutes()
    routes.websocket_route("/ws")(echo_params)
    client = await aiohttp_client(make_app(routes))
    response = await client.get("/ws")
    assert response.status == 426
    assert response.headers["Upgrade"] == "websocket"
    assert "WebSocket" in await response.text()


async def test_websocket_handler_mounts_with_add_get_in_a_sub_app(
    aiohttp_client: AiohttpClient,
) -> None:
    """websocket_handler() returns a plain aiohttp handler, for add_get() and sub-apps."""
    subapp = web.Application()
    subapp.router.add_get("/rooms/{room}", websocket_handler(echo_params, value_type="json"))
    app = make_app()
    app.add_subapp("/api", subapp)
    client = await aiohttp_client(app)
    async with client.ws_connect("/api/rooms/red") as ws:
        assert await ws.receive_json(timeout=5) == {"room": ["str", "red"]}


async def test_sub_app_connections_are_registered_in_the_parent(
    aiohttp_client: AiohttpClient,
) -> None:
    """setup() on the main app covers connections served by its sub-apps."""
    subapp = web.Application()
    registered: list[bool] = []

    async def view(ws: WebSocket) -> None:
        await ws.accept()
        registered.append(ws in app[aioendpoints.CONNECTIONS_KEY])

    subapp.router.add_get("/ws", websocket_handler(view))
    app = make_app()
    app.add_subapp("/sub", subapp)
    client = await aiohttp_client(app)
    async with client.ws_connect("/sub/ws") as ws:
        await ws.receive(timeout=5)
    assert registered == [True]


async def test_named_routes_build_urls(aiohttp_client: AiohttpClient) -> None:
    """name= names the route for url_for()."""
    routes = WebSocketRoutes()
    routes.websocket_route("/rooms/{room}", name="room")(echo_params)
    app = make_app(routes)
    assert str(app.router["room"].url_for(room="blue")) == "/rooms/blue"


async def test_routes_work_without_setup(aiohttp_client: AiohttpClient) -> None:
    """app.add_routes(routes) alone serves the routes with the lifecycle guarantees."""
    routes = WebSocketRoutes()

    @routes.websocket_route("/")
    async def view(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send("no setup needed")

    client = await aiohttp_client(make_app(routes, setup=False))
    async with client.ws_connect("/") as ws:
        assert await ws.receive_str(timeout=5) == "no setup needed"
        assert (await ws.receive(timeout=5)).data == 1000


def test_sync_view_is_refused_at_registration() -> None:
    """A view that is not async is a TypeError naming it."""
    routes = WebSocketRoutes()

    def view(ws: WebSocket) -> None:
        pass

    with pytest.raises(TypeError, match="must be an async function"):
        routes.websocket_route("/")(view)  # type: ignore[type-var]


def test_class_that_is_not_an_endpoint_is_refused() -> None:
    """A class that does not subclass WebSocketEndpoint is a TypeError naming it."""
    routes = WebSocketRoutes()

    class NotAnEndpoint:
        pass

    with pytest.raises(TypeError, match="NotAnEndpoint must subclass WebSocketEndpoint"):
        routes.add_websocket_route("/", NotAnEndpoint)  # type: ignore[arg-type]


@pytest.mark.parametrize("option", ["value_type", "receive_type", "send_type"])
def test_unknown_value_type_is_refused(option: str) -> None:
    """An unknown value type is a ValueError naming the option and the value."""
    with pytest.raises(ValueError, match=f"{option} must be one of .* got 'xml'"):
        websocket_handler(echo_params, **{option: "xml"})  # type: ignore[misc]


def test_unknown_option_is_refused() -> None:
    """A misspelt option is a TypeError naming it."""
    with pytest.raises(TypeError, match="heartbeet"):
        websocket_handler(echo_params, heartbeet=5)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"caught_close_codes": "none"}, "caught_close_codes"),
        ({"heartbeat": -1}, "heartbeat must be a positive number"),
        ({"max_msg_size": "big"}, "max_msg_size"),
        ({"loads": 3}, "loads must be callable"),
        ({"protocols": "chat"}, "protocols must be a list"),
    ],
)
def test_bad_option_values_are_refused(options: dict[str, Any], message: str) -> None:
    """Each bad option value is refused at registration with a message naming it."""
    with pytest.raises((TypeError, ValueError), match=message):
        websocket_handler(echo_params, **options)


def test_view_missing_a_route_parameter_is_refused() -> None:
    """A view that cannot take the path's parameters is refused at registration."""
    routes = WebSocketRoutes()

    async def view(ws: WebSocket) -> None:
        pass

    with pytest.raises(TypeError, match=r"does not take route parameter.*'room'"):
        routes.websocket_route("/rooms/{room}")(view)


def test_view_requiring_a_parameter_the_path_lacks_is_refused() -> None:
    """A required view parameter that the path does not provide is refused."""
    routes = WebSocketRoutes()

    async def view(ws: WebSocket, room: str) -> None:
        pass

    with pytest.raises(TypeError, match="requires 'room'"):
        routes.websocket_route("/rooms")(view)


def test_unconvertible_annotation_is_refused() -> None:
    """An annotation that cannot build a value from a string is refused."""

    async def view(ws: WebSocket, ids: list[int]) -> None:
        pass

    with pytest.raises(TypeError, match="'ids'"):
        websocket_handler(view)


async def test_endpoint_routes_get_raw_path_params(aiohttp_client: AiohttpClient) -> None:
    """Endpoints see route parameters as strings in ws.path_params."""
    routes = WebSocketRoutes()

    @routes.websocket_route("/n/{number}", value_type="json")
    class Endpoint(WebSocketEndpoint):
        async def on_connect(self, ws: WebSocket) -> None:
            await ws.accept()
            await ws.send(dict(ws.path_params))

    client = await aiohttp_client(make_app(routes))
    async with client.ws_connect("/n/7") as ws:
        assert await ws.receive_json(timeout=5) == {"number": "7"}


def test_websocket_route_without_a_path_says_how_to_write_it() -> None:
    """@routes.websocket_route used bare is a TypeError that shows the call with a path."""
    routes = WebSocketRoutes()
    with pytest.raises(TypeError) as raised:

        @routes.websocket_route  # type: ignore[arg-type]
        async def echo(ws: WebSocket) -> None:
            pass

    assert str(raised.value) == (
        'websocket_route() needs a path: write @routes.websocket_route("/echo") above echo'
    )
    assert len(routes) == 0


def test_add_websocket_route_with_the_view_first_says_the_path_comes_first() -> None:
    """add_websocket_route(view, path) is a TypeError that shows the right order."""

    async def echo(ws: WebSocket) -> None:
        pass

    with pytest.raises(TypeError) as raised:
        WebSocketRoutes().add_websocket_route(echo, "/echo")  # type: ignore[arg-type]
    assert str(raised.value) == (
        'add_websocket_route() needs a path: write routes.add_websocket_route("/echo", echo): '
        "the path comes first"
    )


def test_starlette_convertor_syntax_says_how_to_write_it_in_aiohttp() -> None:
    """'{id:int}' would be a regex matching "int": a ValueError shows the aiohttp way."""
    routes = WebSocketRoutes()

    async def item(ws: WebSocket, id: int) -> None:
        pass

    with pytest.raises(ValueError, match="Starlette's convertor syntax") as raised:
        routes.add_websocket_route("/items/{id:int}", item)
    assert str(raised.value) == (
        "'/items/{id:int}': {id:int} is Starlette's convertor syntax; in aiohttp the part "
        "after ':' is a regular expression, so it would match only the text 'int'. "
        "Write {id:\\d+} and annotate the view's parameter id: int"
    )
    assert len(routes) == 0


def test_a_regex_that_is_not_a_convertor_name_is_left_alone() -> None:
    """aiohttp's own '{id:\\d+}' and '{name:[a-z]+}' are accepted."""
    routes = WebSocketRoutes()

    async def item(ws: WebSocket, id: int, name: str) -> None:
        pass

    routes.add_websocket_route(r"/items/{id:\d+}/{name:[a-z]+}", item)
    assert len(routes) == 1
