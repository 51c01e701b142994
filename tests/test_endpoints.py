"""Class-based endpoints: hooks, encodings, one instance per connection."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from aiohttp import WSMsgType

from aioendpoints import WebSocket, WebSocketEndpoint, WebSocketRoutes
from tests.conftest import ModeClient

from .helpers import eventually, make_app


@pytest.mark.parametrize(
    ("encoding", "send", "expected"),
    [
        ("text", ("str", "hello"), "hello"),
        ("bytes", ("bytes", b"\x01\x02"), b"\x01\x02"),
        ("json", ("str", '{"n": [1, {"x": null}]}'), {"n": [1, {"x": None}]}),
        (None, ("bytes", b"raw"), b"raw"),
        (None, ("str", "raw text"), "raw text"),
    ],
)
async def test_encoding_decides_what_on_receive_gets(
    each_mode_client: ModeClient, encoding: Any, send: tuple[str, Any], expected: Any
) -> None:
    """on_receive gets str, bytes, decoded JSON, or the raw message as the encoding says."""
    routes = WebSocketRoutes()
    received: list[Any] = []

    @routes.websocket_route("/")
    class Endpoint(WebSocketEndpoint):
        async def on_receive(self, ws: WebSocket, data: Any) -> None:
            received.append(data)

    Endpoint.encoding = encoding
    client = await each_mode_client(make_app(routes))
    async with client.ws_connect("/") as ws:
        kind, payload = send
        await (ws.send_str(payload) if kind == "str" else ws.send_bytes(payload))
    await eventually(lambda: received == [expected])


async def test_the_issue_example_room_endpoint(each_mode_client: ModeClient) -> None:
    """The Room example: a JSON endpoint that echoes with its route parameter."""
    routes = WebSocketRoutes()
    disconnects: list[int] = []

    @routes.websocket_route("/rooms/{room}")
    class Room(WebSocketEndpoint):
        encoding = "json"

        async def on_connect(self, ws: WebSocket) -> None:
            await ws.accept()

        async def on_receive(self, ws: WebSocket, data: Any) -> None:
            await ws.send({"room": ws.path_params["room"], "echo": data})

        async def on_disconnect(self, ws: WebSocket, close_code: int) -> None:
            disconnects.append(close_code)

    client = await each_mode_client(make_app(routes))
    async with client.ws_connect("/rooms/blue") as ws:
        await ws.send_json({"text": "hi"})
        assert json.loads(await ws.receive_str(timeout=5)) == {
            "room": "blue",
            "echo": {"text": "hi"},
        }
    await eventually(lambda: disconnects == [1000])


async def test_default_on_connect_accepts(each_mode_client: ModeClient) -> None:
    """An endpoint that overrides nothing accepts connections."""
    routes = WebSocketRoutes()
    routes.add_websocket_route("/", WebSocketEndpoint)
    client = await each_mode_client(make_app(routes))
    async with client.ws_connect("/") as ws:
        await ws.send_str("ignored")
        assert not ws.closed


async def test_one_instance_per_connection(each_mode_client: ModeClient) -> None:
    """Each connection gets its own endpoint instance, so instance state is per connection."""
    routes = WebSocketRoutes()
    instances: set[int] = set()

    @routes.websocket_route("/")
    class Counter(WebSocketEndpoint):
        encoding = "text"

        def __init__(self, websocket: WebSocket) -> None:
            super().__init__(websocket)
            self.count = 0
            instances.add(id(self))

        async def on_receive(self, ws: WebSocket, data: str) -> None:
            self.count += 1
            await ws.send(str(self.count))

    client = await each_mode_client(make_app(routes))
    async with client.ws_connect("/") as first, client.ws_connect("/") as second:
        for _ in range(3):
            await first.send_str("+")
            await first.receive_str(timeout=5)
        await second.send_str("+")
        assert await second.receive_str(timeout=5) == "1"
        await first.send_str("+")
        assert await first.receive_str(timeout=5) == "4"
    assert len(instances) == 2


async def test_on_disconnect_gets_the_peers_close_code(each_mode_client: ModeClient) -> None:
    """on_disconnect runs once with the code the client closed with."""
    routes = WebSocketRoutes()
    disconnects: list[int] = []

    @routes.websocket_route("/")
    class Endpoint(WebSocketEndpoint):
        async def on_disconnect(self, ws: WebSocket, close_code: int) -> None:
            disconnects.append(close_code)

    client = await each_mode_client(make_app(routes))
    async with client.ws_connect("/") as ws:
        await ws.close(code=4321)
    await eventually(lambda: disconnects == [4321])


async def test_on_disconnect_gets_1006_when_the_client_vanishes(
    each_mode_client: ModeClient,
) -> None:
    """A client that drops TCP without a close frame is reported as 1006, once."""
    routes = WebSocketRoutes()
    disconnects: list[int] = []

    @routes.websocket_route("/")
    class Endpoint(WebSocketEndpoint):
        async def on_receive(self, ws: WebSocket, data: Any) -> None:
            await ws.send("ack")

        async def on_disconnect(self, ws: WebSocket, close_code: int) -> None:
            disconnects.append(close_code)

    client = await each_mode_client(make_app(routes))
    ws = await client.ws_connect("/")
    await ws.send_str("x")
    assert await ws.receive_str(timeout=5) == "ack"
    transport = ws._response.connection.transport  # type: ignore[union-attr]
    assert transport is not None
    transport.abort()
    await eventually(lambda: disconnects == [1006])
    await ws.close()


async def test_on_receive_error_closes_1011_and_logs_once(
    each_mode_client: ModeClient, caplog: pytest.LogCaptureFixture
) -> None:
    """An exception in on_receive closes with 1011, logs one traceback, then on_disconnect."""
    routes = WebSocketRoutes()
    disconnects: list[int] = []

    @routes.websocket_route("/")
    class Faulty(WebSocketEndpoint):
        async def on_receive(self, ws: WebSocket, data: Any) -> None:
            raise ZeroDivisionError("boom")

        async def on_disconnect(self, ws: WebSocket, close_code: int) -> None:
            disconnects.append(close_code)

    client = await each_mode_client(make_app(routes))
    with caplog.at_level(logging.ERROR, logger="aioendpoints"):
        async with client.ws_connect("/") as ws:
            await ws.send_str("x")
            message = await ws.receive(timeout=5)
            assert (message.type, message.data) == (WSMsgType.CLOSE, 1011)
        await eventually(lambda: disconnects == [1011])
    errors = [record for record in caplog.records if record.name == "aioendpoints"]
    assert len(errors) == 1
    assert errors[0].exc_info is not None
    assert errors[0].exc_info[0] is ZeroDivisionError


async def test_on_connect_that_does_not_accept_refuses_with_403(
    each_mode_client: ModeClient,
) -> None:
    """An on_connect that neither accepts nor rejects refuses the handshake with HTTP 403."""
    routes = WebSocketRoutes()
    disconnects: list[int] = []

    @routes.websocket_route("/")
    class Closed(WebSocketEndpoint):
        async def on_connect(self, ws: WebSocket) -> None:
            await ws.close()

        async def on_disconnect(self, ws: WebSocket, close_code: int) -> None:
            disconnects.append(close_code)

    client = await each_mode_client(make_app(routes))
    response = await client.get(
        "/",
        headers={
            "Upgrade": "websocket",
            "Connection": "Upgrade",
            "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        },
    )
    assert response.status == 403
    assert disconnects == []  # never accepted, so never disconnected


async def test_on_connect_error_before_accept_is_http_500(
    each_mode_client: ModeClient, caplog: pytest.LogCaptureFixture
) -> None:
    """An exception in on_connect before accept() answers HTTP 500 and logs the traceback."""
    routes = WebSocketRoutes()

    @routes.websocket_route("/")
    class Faulty(WebSocketEndpoint):
        async def on_connect(self, ws: WebSocket) -> None:
            raise LookupError("no such user")

    client = await each_mode_client(make_app(routes))
    with caplog.at_level(logging.ERROR, logger="aioendpoints"):
        response = await client.get("/", headers={"Upgrade": "websocket", "Connection": "Upgrade"})
    assert response.status == 500
    assert [r.exc_info[0] for r in caplog.records if r.exc_info] == [LookupError]


async def test_on_disconnect_error_is_logged_not_raised(
    each_mode_client: ModeClient, caplog: pytest.LogCaptureFixture
) -> None:
    """An exception in on_disconnect is logged; the connection had already closed cleanly."""
    routes = WebSocketRoutes()

    @routes.websocket_route("/")
    class Faulty(WebSocketEndpoint):
        async def on_disconnect(self, ws: WebSocket, close_code: int) -> None:
            raise KeyError("cleanup failed")

    client = await each_mode_client(make_app(routes))
    with caplog.at_level(logging.ERROR, logger="aioendpoints"):
        async with client.ws_connect("/") as ws:
            await ws.close()
        await eventually(lambda: any(r.exc_info for r in caplog.records))
    assert "on_disconnect" in caplog.records[-1].getMessage()


def test_endpoint_checks_its_encoding_when_defined() -> None:
    """A bad encoding is a ValueError naming it, raised by the class statement."""
    with pytest.raises(ValueError, match="'xml'"):

        class Bad(WebSocketEndpoint):
            encoding = "xml"  # type: ignore[assignment]


def test_endpoint_hooks_must_be_async() -> None:
    """A synchronous hook is a TypeError naming it, raised by the class statement."""
    with pytest.raises(TypeError, match="on_receive"):

        class Bad(WebSocketEndpoint):
            def on_receive(self, ws: WebSocket, data: Any) -> None:  # type: ignore[override]
                pass


def test_on_receive_without_data_fails_when_defined() -> None:
    """An on_receive that does not take the data is a TypeError saying what to write."""
    with pytest.raises(TypeError) as raised:

        class Bad(WebSocketEndpoint):
            async def on_receive(self, ws: WebSocket) -> None:  # type: ignore[override]
                pass

    assert str(raised.value) == (
        "test_on_receive_without_data_fails_when_defined.<locals>.Bad.on_receive(self, ws) "
        "does not take the arguments it is called with: write "
        "async def on_receive(self, websocket: WebSocket, data: Any)"
    )


def test_on_disconnect_without_close_code_fails_when_defined() -> None:
    """An on_disconnect that does not take the close code is a TypeError saying what to write."""
    with pytest.raises(TypeError) as raised:

        class Bad(WebSocketEndpoint):
            async def on_disconnect(self, ws: WebSocket) -> None:  # type: ignore[override]
                pass

    assert str(raised.value).endswith(
        "Bad.on_disconnect(self, ws) does not take the arguments it is called with: write "
        "async def on_disconnect(self, websocket: WebSocket, close_code: int)"
    )


def test_sync_hook_message_says_what_to_write() -> None:
    """A synchronous hook's error shows the async signature to write."""
    with pytest.raises(TypeError) as raised:

        class Bad(WebSocketEndpoint):
            def on_connect(self, ws: WebSocket) -> None:  # type: ignore[override]
                pass

    assert str(raised.value).endswith(
        "Bad.on_connect must be an async method: write "
        "async def on_connect(self, websocket: WebSocket)"
    )


def test_hooks_with_extra_defaults_or_star_args_are_accepted() -> None:
    """A hook that takes more, optionally, is fine: only what cannot be called is refused."""

    class Flexible(WebSocketEndpoint):
        async def on_receive(self, ws: WebSocket, data: Any, extra: int = 0) -> None:
            pass

        async def on_disconnect(self, *args: Any) -> None:
            pass

    assert Flexible.on_receive is not WebSocketEndpoint.on_receive


@pytest.mark.parametrize(
    ("route_options", "send", "expected"),
    [
        ({"receive_type": "json"}, ("str", '{"a": 1}'), {"a": 1}),
        ({"value_type": "json"}, ("str", "[1, 2]"), [1, 2]),
        ({"receive_type": "bytes"}, ("bytes", b"\x00"), b"\x00"),
        ({}, ("bytes", b"as it came"), b"as it came"),
    ],
)
async def test_endpoint_without_encoding_honours_the_routes_receive_type(
    each_mode_client: ModeClient,
    route_options: dict[str, Any],
    send: tuple[str, Any],
    expected: Any,
) -> None:
    """With encoding unset, on_receive gets what the route's receive_type says, if it says."""
    routes = WebSocketRoutes()
    received: list[Any] = []

    class Endpoint(WebSocketEndpoint):
        async def on_receive(self, ws: WebSocket, data: Any) -> None:
            received.append(data)

    routes.add_websocket_route("/", Endpoint, **route_options)
    client = await each_mode_client(make_app(routes))
    async with client.ws_connect("/") as ws:
        kind, payload = send
        await (ws.send_str(payload) if kind == "str" else ws.send_bytes(payload))
        await eventually(lambda: received == [expected])


async def test_an_overridden_decode_parses_each_message(each_mode_client: ModeClient) -> None:
    """decode(ws, message) gets the message as it came; on_receive gets what it returns."""
    routes = WebSocketRoutes()
    received: list[Any] = []

    @routes.websocket_route("/")
    class Csv(WebSocketEndpoint):
        async def decode(self, ws: WebSocket, message: str | bytes) -> Any:
            text = message.decode() if isinstance(message, bytes) else message
            return text.split(",")

        async def on_receive(self, ws: WebSocket, data: Any) -> None:
            received.append(data)

    client = await each_mode_client(make_app(routes))
    async with client.ws_connect("/") as ws:
        await ws.send_str("a,b")
        await ws.send_bytes(b"c,d")
        await eventually(lambda: received == [["a", "b"], ["c", "d"]])


@pytest.mark.parametrize(
    ("encoding", "send", "code"),
    [
        ("json", ("str", "{not json"), 1007),
        ("json", ("bytes", b"{}"), 1003),
        ("text", ("bytes", b"x"), 1003),
        ("bytes", ("str", "x"), 1003),
    ],
)
async def test_calling_the_default_decode_refuses_like_the_receive_methods(
    each_mode_client: ModeClient, encoding: Any, send: tuple[str, Any], code: int
) -> None:
    """An override that calls super().decode() closes with 1007/1003, as receive_json() does."""
    routes = WebSocketRoutes()
    seen: list[Any] = []

    class Endpoint(WebSocketEndpoint):
        async def decode(self, ws: WebSocket, message: str | bytes) -> Any:
            seen.append(message)
            return await super().decode(ws, message)

    Endpoint.encoding = encoding
    routes.add_websocket_route("/", Endpoint)
    client = await each_mode_client(make_app(routes))
    async with client.ws_connect("/") as ws:
        kind, payload = send
        await (ws.send_str(payload) if kind == "str" else ws.send_bytes(payload))
        message = await ws.receive(timeout=5)
    assert (message.type, message.data) == (WSMsgType.CLOSE, code)
    assert seen == [payload]


def test_decode_with_a_wrong_signature_fails_when_defined() -> None:
    """decode() is checked like the hooks."""
    with pytest.raises(TypeError, match=r"write async def decode\(self, websocket"):

        class Bad(WebSocketEndpoint):
            async def decode(self, message: str) -> Any:  # type: ignore[override]
                return message


def test_an_endpoint_is_not_awaitable() -> None:
    """Awaiting an endpoint would skip on_disconnect, so it is not awaitable: routes run it."""
    assert not hasattr(WebSocketEndpoint, "__await__")


@pytest.mark.parametrize("name", ["value_type", "receive_type", "send_type"])
def test_route_option_on_an_endpoint_class_suggests_encoding(name: str) -> None:
    """value_type (the route's word) set on an endpoint class points to encoding."""
    with pytest.raises(TypeError) as raised:
        type("Chat", (WebSocketEndpoint,), {name: "json"})
    assert str(raised.value) == (
        f"Chat.{name}: {name} is a route option, not an endpoint attribute; write "
        f"encoding = 'json' in the class, or pass {name}='json' to websocket_route()"
    )


@pytest.mark.parametrize(
    ("name", "meant"),
    [("on_recieve", "on_receive"), ("on_disconect", "on_disconnect"), ("encodng", "encoding")],
)
def test_misspelt_hook_or_encoding_suggests_the_name(name: str, meant: str) -> None:
    """A hook or encoding spelt wrong would never run: a TypeError with a did-you-mean."""
    with pytest.raises(TypeError) as raised:
        type("Chat", (WebSocketEndpoint,), {name: None})
    assert str(raised.value) == (
        f"Chat.{name} is not a WebSocketEndpoint attribute, so it would never be used: "
        f"did you mean {meant}?"
    )


def test_own_names_and_own_on_handlers_are_left_alone() -> None:
    """Names of the endpoint's own, even on_something ones, are not taken for typos."""

    class Chat(WebSocketEndpoint):
        history_size = 10

        async def on_join(self, ws: WebSocket) -> None:
            pass

        async def on_reconnect(self, ws: WebSocket) -> None:
            pass

        async def on_received(self, ws: WebSocket) -> None:
            pass

    assert Chat.history_size == 10
