"""The WebSocket API: accept, receive, send, close, value types and the handshake request."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp import WSMsgType

from aioendpoints import (
    WebSocket,
    WebSocketDisconnect,
    WebSocketRoutes,
    WebSocketState,
    WebSocketStateError,
)
from tests.conftest import ModeClient

from .helpers import eventually, make_app


async def test_receive_and_send_text_by_default(each_mode_client: ModeClient) -> None:
    """Without options, receive() returns str and send() takes str."""
    routes = WebSocketRoutes()

    @routes.websocket_route("/")
    async def view(ws: WebSocket) -> None:
        await ws.accept()
        text = await ws.receive()
        assert isinstance(text, str)
        await ws.send(text.upper())

    client = await each_mode_client(make_app(routes))
    async with client.ws_connect("/") as ws:
        await ws.send_str("abc")
        assert await ws.receive_str(timeout=5) == "ABC"


@pytest.mark.parametrize(
    ("value_type", "outgoing", "expected"),
    [
        ("text", "é", "é"),
        ("bytes", b"\x00\xff", b"\x00\xff"),
        ("json", {"a": [1, 2.5, None, "é"]}, {"a": [1, 2.5, None, "é"]}),
    ],
)
async def test_value_type_sets_both_directions(
    each_mode_client: ModeClient, value_type: Any, outgoing: Any, expected: Any
) -> None:
    """value_type decides what receive() returns and what send() takes."""
    routes = WebSocketRoutes()

    @routes.websocket_route("/", value_type=value_type)
    async def view(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send(await ws.receive())

    client = await each_mode_client(make_app(routes))
    async with client.ws_connect("/") as ws:
        if value_type == "text":
            await ws.send_str(outgoing)
            assert await ws.receive_str(timeout=5) == expected
        elif value_type == "bytes":
            await ws.send_bytes(outgoing)
            assert await ws.receive_bytes(timeout=5) == expected
        else:
            await ws.send_json(outgoing)
            assert json.loads(await ws.receive_str(timeout=5)) == expected


async def test_receive_type_and_send_type_differ(each_mode_client: ModeClient) -> None:
    """receive_type and send_type can be set apart: text in, JSON out."""
    routes = WebSocketRoutes()

    @routes.websocket_route("/", receive_type="text", send_type="json")
    async def view(ws: WebSocket) -> None:
        await ws.accept()
        assert ws.value_type is None
        await ws.send({"got": await ws.receive()})

    client = await each_mode_client(make_app(routes))
    async with client.ws_connect("/") as ws:
        await ws.send_str("x")
        assert await ws.receive_json(timeout=5) == {"got": "x"}


async def test_typed_variants_ignore_the_value_type(each_mode_client: ModeClient) -> None:
    """receive_bytes()/send_json() and friends work whatever the route's value type."""
    routes = WebSocketRoutes()

    @routes.websocket_route("/")
    async def view(ws: WebSocket) -> None:
        await ws.accept()
        data = await ws.receive_bytes()
        await ws.send_bytes(data[::-1])
        value = await ws.receive_json()
        await ws.send_json({"doubled": value * 2})
        await ws.send_text(await ws.receive_text())
        await ws.send_text(repr(await ws.receive_message()))

    client = await each_mode_client(make_app(routes))
    async with client.ws_connect("/") as ws:
        await ws.send_bytes(b"abc")
        assert await ws.receive_bytes(timeout=5) == b"cba"
        await ws.send_str("21")
        assert await ws.receive_json(timeout=5) == {"doubled": 42}
        await ws.send_str("plain")
        assert await ws.receive_str(timeout=5) == "plain"
        await ws.send_bytes(b"raw")
        assert await ws.receive_str(timeout=5) == "b'raw'"


async def test_async_for_yields_messages_until_a_normal_close(
    each_mode_client: ModeClient,
) -> None:
    """`async for message in ws` yields each message and ends when the peer closes with 1000."""
    routes = WebSocketRoutes()
    seen: list[str] = []

    @routes.websocket_route("/")
    async def view(ws: WebSocket) -> None:
        await ws.accept()
        async for message in ws:
            seen.append(message)
        seen.append(f"ended {ws.close_code}")

    client = await each_mode_client(make_app(routes))
    async with client.ws_connect("/") as ws:
        await ws.send_str("one")
        await ws.send_str("two")
    await eventually(lambda: len(seen) == 3)
    assert seen == ["one", "two", "ended 1000"]


async def test_async_for_raises_on_an_uncaught_close_code(each_mode_client: ModeClient) -> None:
    """A close code outside caught_close_codes escapes `async for` as WebSocketDisconnect."""
    routes = WebSocketRoutes()
    raised: list[int] = []

    @routes.websocket_route("/")
    async def view(ws: WebSocket) -> None:
        await ws.accept()
        try:
            async for _ in ws:
                pass
        except WebSocketDisconnect as disconnect:
            raised.append(disconnect.code)

    client = await each_mode_client(make_app(routes))
    async with client.ws_connect("/") as ws:
        await ws.close(code=4000)
    await eventually(lambda: raised == [4000])


async def test_async_with_accepts_and_closes(each_mode_client: ModeClient) -> None:
    """`async with ws:` accepts on enter and closes with 1000 on exit."""
    routes = WebSocketRoutes()

    @routes.websocket_route("/")
    async def view(ws: WebSocket) -> None:
        async with ws:
            assert ws.accepted
            await ws.send("inside")

    client = await each_mode_client(make_app(routes))
    async with client.ws_connect("/") as ws:
        assert await ws.receive_str(timeout=5) == "inside"
        message = await ws.receive(timeout=5)
        assert (message.type, message.data) == (WSMsgType.CLOSE, 1000)


async def test_close_sends_the_code_and_reason(each_mode_client: ModeClient) -> None:
    """close(code, reason) reaches the client as given."""
    routes = WebSocketRoutes()

    @routes.websocket_route("/")
    async def view(ws: WebSocket) -> None:
        await ws.accept()
        await ws.close(4001, "bye now")
        assert ws.closed
        assert (ws.close_code, ws.close_reason) == (4001, "bye now")

    client = await each_mode_client(make_app(routes))
    async with client.ws_connect("/") as ws:
        message = await ws.receive(timeout=5)
        assert (message.type, message.data, message.extra) == (WSMsgType.CLOSE, 4001, "bye now")


async def test_close_rejects_codes_that_cannot_be_sent(each_mode_client: ModeClient) -> None:
    """close(1006) is a ValueError: 1005, 1006 and 1015 never go in a close frame."""
    routes = WebSocketRoutes()
    errors: list[str] = []

    @routes.websocket_route("/")
    async def view(ws: WebSocket) -> None:
        await ws.accept()
        with pytest.raises(ValueError, match="1006") as error:
            await ws.close(1006)
        errors.append(str(error.value))

    client = await each_mode_client(make_app(routes))
    async with client.ws_connect("/") as ws:
        message = await ws.receive(timeout=5)
        assert message.data == 1000
    assert len(errors) == 1


async def test_receive_after_the_peer_closed_raises_disconnect(
    each_mode_client: ModeClient,
) -> None:
    """receive() raises WebSocketDisconnect with the peer's code and reason."""
    routes = WebSocketRoutes()
    disconnects: list[tuple[int, str]] = []

    @routes.websocket_route("/")
    async def view(ws: WebSocket) -> None:
        await ws.accept()
        try:
            await ws.receive()
        except WebSocketDisconnect as disconnect:
            disconnects.append((disconnect.code, disconnect.reason))
        with pytest.raises(WebSocketDisconnect):
            await ws.send("too late")

    client = await each_mode_client(make_app(routes))
    async with client.ws_connect("/") as ws:
        await ws.close(code=1001, message=b"leaving")
    await eventually(lambda: disconnects == [(1001, "leaving")])


async def test_send_before_accept_is_a_state_error(each_mode_client: ModeClient) -> None:
    """send() before accept() raises WebSocketStateError; the client gets HTTP 500."""
    routes = WebSocketRoutes()
    errors: list[BaseException] = []

    @routes.websocket_route("/")
    async def view(ws: WebSocket) -> None:
        try:
            await ws.send("early")
        except WebSocketStateError as error:
            errors.append(error)
            raise

    client = await each_mode_client(make_app(routes))
    response = await client.get("/", headers={"Upgrade": "websocket", "Connection": "Upgrade"})
    assert response.status == 500
    assert len(errors) == 1


async def test_accept_twice_is_a_state_error(each_mode_client: ModeClient) -> None:
    """A second accept() raises WebSocketStateError."""
    routes = WebSocketRoutes()
    errors: list[BaseException] = []

    @routes.websocket_route("/")
    async def view(ws: WebSocket) -> None:
        await ws.accept()
        with pytest.raises(WebSocketStateError, match="already"):
            await ws.accept()
        errors.append(RuntimeError())

    client = await each_mode_client(make_app(routes))
    async with client.ws_connect("/") as ws:
        assert (await ws.receive(timeout=5)).data == 1000
    assert len(errors) == 1


async def test_send_of_the_wrong_type_names_the_fix(each_mode_client: ModeClient) -> None:
    """send() of a dict on a text route raises a TypeError that says what to do."""
    routes = WebSocketRoutes()
    messages: list[str] = []

    @routes.websocket_route("/")
    async def view(ws: WebSocket) -> None:
        await ws.accept()
        with pytest.raises(TypeError) as error:
            await ws.send({"a": 1})
        messages.append(str(error.value))

    client = await each_mode_client(make_app(routes))
    async with client.ws_connect("/") as ws:
        await ws.receive(timeout=5)
    assert messages[0].startswith("send() takes a str when the send_type is 'text', got dict")
    assert "value_type" in messages[0]


@pytest.mark.parametrize(
    ("value_type", "value", "expected"),
    [
        ("text", 42, "send() takes a str when the send_type is 'text', got int 42;"),
        ("bytes", "x", "send() takes bytes when the send_type is 'bytes', got str 'x';"),
    ],
)
async def test_send_type_error_names_send_and_the_value(
    each_mode_client: ModeClient, value_type: str, value: Any, expected: str
) -> None:
    """The error of send() names send() (not send_text()/send_bytes()) and the value's type."""
    routes = WebSocketRoutes()
    messages: list[str] = []

    @routes.websocket_route("/", value_type=value_type)  # type: ignore[call-overload]
    async def view(ws: WebSocket) -> None:
        await ws.accept()
        with pytest.raises(TypeError) as error:
            await ws.send(value)
        messages.append(str(error.value))

    client = await each_mode_client(make_app(routes))
    async with client.ws_connect("/") as ws:
        await ws.receive(timeout=5)
    assert messages[0].startswith(expected), messages


async def test_request_details_are_exposed(each_mode_client: ModeClient) -> None:
    """url, headers, query_params, cookies, client, path_params and the escape hatches."""
    routes = WebSocketRoutes()
    seen: dict[str, Any] = {}

    @routes.websocket_route("/users/{name}")
    async def view(ws: WebSocket, name: str) -> None:
        seen.update(
            path=ws.url.path,
            header=ws.headers["X-Test"],
            query=ws.query_params.getall("tag"),
            cookie=ws.cookies["session"],
            client_host=ws.client.host if ws.client else None,
            params=dict(ws.path_params),
            request_path=ws.request.path,
            response_before=ws.response,
        )
        await ws.accept()
        seen["response_prepared"] = ws.response is not None and ws.response.prepared
        ws.state.user = name
        seen["state"] = ws.state.user

    client = await each_mode_client(make_app(routes))
    async with client.ws_connect(
        "/users/ann?tag=a&tag=b", headers={"X-Test": "yes", "Cookie": "session=s1"}
    ) as ws:
        await ws.receive(timeout=5)
    assert seen == {
        "path": "/users/ann",
        "header": "yes",
        "query": ["a", "b"],
        "cookie": "s1",
        "client_host": "127.0.0.1",
        "params": {"name": "ann"},
        "request_path": "/users/ann",
        "response_before": None,
        "response_prepared": True,
        "state": "ann",
    }


async def test_accept_chooses_a_subprotocol_and_adds_headers(
    each_mode_client: ModeClient,
) -> None:
    """accept(subprotocol=..., headers=...) reaches the client's handshake response."""
    routes = WebSocketRoutes()

    @routes.websocket_route("/")
    async def view(ws: WebSocket) -> None:
        await ws.accept(subprotocol="chat.v2", headers={"X-Served-By": "aioendpoints"})
        await ws.send(ws.subprotocol or "none")

    client = await each_mode_client(make_app(routes))
    async with client.ws_connect("/", protocols=("chat.v1", "chat.v2")) as ws:
        assert ws.protocol == "chat.v2"
        assert await ws.receive_str(timeout=5) == "chat.v2"
        assert ws._response.headers["X-Served-By"] == "aioendpoints"


async def test_route_protocols_are_negotiated(each_mode_client: ModeClient) -> None:
    """The route's protocols option picks the first one the client offers."""
    routes = WebSocketRoutes()

    @routes.websocket_route("/", protocols=["graphql-ws", "json"])
    async def view(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send(str(ws.subprotocol))

    client = await each_mode_client(make_app(routes))
    async with client.ws_connect("/", protocols=("json",)) as ws:
        assert await ws.receive_str(timeout=5) == "json"


async def test_subprotocols_lists_what_the_client_offered(each_mode_client: ModeClient) -> None:
    """ws.subprotocols is the client's offer, in its order, before accept()."""
    routes = WebSocketRoutes()
    seen: list[tuple[str, ...]] = []

    @routes.websocket_route("/")
    async def view(ws: WebSocket) -> None:
        seen.append(ws.subprotocols)
        await ws.accept(subprotocol=ws.subprotocols[-1] if ws.subprotocols else None)

    client = await each_mode_client(make_app(routes))
    async with client.ws_connect("/", protocols=("chat.v1", "chat.v2")) as ws:
        assert ws.protocol == "chat.v2"
    async with client.ws_connect("/") as ws:
        assert ws.protocol is None
    assert seen == [("chat.v1", "chat.v2"), ()]


async def test_accepting_a_subprotocol_the_client_did_not_offer_raises(
    each_mode_client: ModeClient, caplog: pytest.LogCaptureFixture
) -> None:
    """accept(subprotocol=...) of a protocol not offered is a ValueError naming the offer."""
    routes = WebSocketRoutes()
    messages: list[str] = []

    @routes.websocket_route("/")
    async def view(ws: WebSocket) -> None:
        with pytest.raises(ValueError) as error:  # noqa: PT011 - the message is checked below
            await ws.accept(subprotocol="chat")
        messages.append(str(error.value))
        await ws.accept()

    client = await each_mode_client(make_app(routes))
    async with client.ws_connect("/", protocols=("graphql-ws",)) as ws:
        assert ws.protocol is None
    assert messages == [
        "accept(subprotocol='chat'): the client did not offer it; it offered ['graphql-ws']: "
        "choose one of ws.subprotocols, or accept() without a subprotocol"
    ]


@pytest.mark.parametrize(
    ("method", "send", "expected"),
    [
        ("iter_text", [("str", "a"), ("str", "b")], ["a", "b"]),
        ("iter_bytes", [("bytes", b"\x01"), ("bytes", b"\x02")], [b"\x01", b"\x02"]),
        ("iter_json", [("str", '{"n": 1}'), ("str", "[2]")], [{"n": 1}, [2]]),
    ],
)
async def test_iter_methods_yield_until_the_peer_closes(
    each_mode_client: ModeClient, method: str, send: list[tuple[str, Any]], expected: list[Any]
) -> None:
    """iter_text(), iter_bytes() and iter_json() yield messages and end on a normal close."""
    routes = WebSocketRoutes()
    received: list[Any] = []
    ended: list[bool] = []

    @routes.websocket_route("/")
    async def view(ws: WebSocket) -> None:
        await ws.accept()
        async for value in getattr(ws, method)():
            received.append(value)
        ended.append(True)

    client = await each_mode_client(make_app(routes))
    async with client.ws_connect("/") as ws:
        for kind, payload in send:
            await (ws.send_str(payload) if kind == "str" else ws.send_bytes(payload))
    await eventually(lambda: ended == [True])
    assert received == expected


async def test_iter_json_raises_for_a_close_code_that_is_not_caught(
    each_mode_client: ModeClient,
) -> None:
    """As with async for, a close code outside caught_close_codes is raised to the view."""
    routes = WebSocketRoutes()
    codes: list[int] = []

    @routes.websocket_route("/")
    async def view(ws: WebSocket) -> None:
        await ws.accept()
        try:
            async for _ in ws.iter_json():
                pass
        except WebSocketDisconnect as disconnect:
            codes.append(disconnect.code)

    client = await each_mode_client(make_app(routes))
    async with client.ws_connect("/") as ws:
        await ws.close(code=4000)
    await eventually(lambda: codes == [4000])


async def test_receive_with_a_timeout_raises_and_keeps_the_connection(
    each_mode_client: ModeClient,
) -> None:
    """receive(timeout=...) raises TimeoutError when nothing comes; the connection stays open."""
    routes = WebSocketRoutes()
    errors: list[str] = []

    @routes.websocket_route("/")
    async def view(ws: WebSocket) -> None:
        await ws.accept()
        try:
            await ws.receive(timeout=0.05)
        except TimeoutError as error:
            errors.append(str(error))
        await ws.send("still open")
        await ws.send(await ws.receive_text(timeout=30))

    client = await each_mode_client(make_app(routes))
    async with client.ws_connect("/") as ws:
        assert await ws.receive_str(timeout=5) == "still open"
        await ws.send_str("echo")
        assert await ws.receive_str(timeout=5) == "echo"
    assert errors == ["no message within 0.05 s"]


async def test_connection_state_follows_the_connection(each_mode_client: ModeClient) -> None:
    """connection_state is CONNECTING, then OPEN, then CLOSED, as a WebSocketState."""
    routes = WebSocketRoutes()
    states: list[WebSocketState] = []

    @routes.websocket_route("/")
    async def view(ws: WebSocket) -> None:
        states.append(ws.connection_state)
        await ws.accept()
        states.append(ws.connection_state)
        await ws.close()
        states.append(ws.connection_state)

    client = await each_mode_client(make_app(routes))
    async with client.ws_connect("/") as ws:
        await ws.receive(timeout=5)
    await eventually(lambda: len(states) == 3)
    assert states == [WebSocketState.CONNECTING, WebSocketState.OPEN, WebSocketState.CLOSED]
    assert all(isinstance(state, WebSocketState) for state in states)
