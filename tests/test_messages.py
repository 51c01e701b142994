"""Typed messages with msgspec: dispatch by class, invalid messages, requests and replies."""

from __future__ import annotations

import logging
from typing import Any

import msgspec
import pytest

from aioendpoints import (
    MessageRejected,
    WebSocket,
    WebSocketClose,
    WebSocketEndpoint,
    WebSocketRoutes,
    on_message,
)
from aioendpoints.testing import WebSocketConnect, connect

from .conftest import ModeClient
from .helpers import eventually, make_app


class Say(msgspec.Struct, tag="say"):
    text: str


class Said(msgspec.Struct, tag="said"):
    text: str
    by: str


class Add(msgspec.Struct, tag="add"):
    a: int
    b: int
    id: int | None = None


class Sum(msgspec.Struct, tag="sum"):
    value: int


class Nested(msgspec.Struct, tag="nested"):
    points: list[Sum]


class Room(WebSocketEndpoint):
    """Says back what it hears, adds numbers on request, and refuses some requests."""

    @on_message
    async def say(self, ws: WebSocket, message: Say) -> None:
        await ws.send(Said(text=message.text, by=ws.path_params["room"]))

    @on_message
    async def add(self, ws: WebSocket, message: Add) -> Sum:
        if message.a < 0:
            raise MessageRejected("a must not be negative")
        if message.a == 13:
            raise RuntimeError("unlucky")
        return Sum(value=message.a + message.b)

    @on_message
    async def nested(self, ws: WebSocket, message: Nested) -> None:
        await ws.send(Sum(value=sum(point.value for point in message.points)))


def room_app(**options: Any) -> Any:
    routes = WebSocketRoutes()
    routes.add_websocket_route("/rooms/{room}", Room, **options)
    return make_app(routes)


async def test_each_message_goes_to_the_handler_of_its_class(
    websocket_connect: WebSocketConnect,
) -> None:
    """A message is decoded into its class and handed to that class's handler."""
    ws = await websocket_connect(room_app(), "/rooms/lobby")
    await ws.send_json({"type": "say", "text": "hi"})
    await ws.expect_json({"type": "said", "text": "hi", "by": "lobby"})
    await ws.send_json({"type": "add", "a": 2, "b": 3})
    await ws.expect_json({"type": "sum", "value": 5})


async def test_a_request_gets_the_reply_with_its_id(websocket_connect: WebSocketConnect) -> None:
    """A message with an id gets the handler's return value with the same id."""
    ws = await websocket_connect(room_app(), "/rooms/lobby")
    await ws.send_json({"type": "add", "a": 2, "b": 3, "id": 7})
    await ws.expect_json({"id": 7, "type": "sum", "value": 5})


async def test_the_request_id_field_is_configurable(websocket_connect: WebSocketConnect) -> None:
    """With request_id="b", the field b is the request id, repeated in the reply."""
    ws = await websocket_connect(room_app(request_id="b"), "/rooms/lobby")
    await ws.send_json({"type": "add", "a": 2, "b": 40})
    await ws.expect_json({"b": 40, "type": "sum", "value": 42})


@pytest.mark.parametrize(
    ("sent", "error", "path"),
    [
        ({"type": "say", "text": 5}, "Expected `str`, got `int`", "$.text"),
        ({"type": "shout", "text": "hi"}, "Invalid value 'shout'", "$.type"),
        ({"text": "hi"}, "Object missing required field `type`", None),
        (["say"], "Expected `object`, got `array`", None),
        ({"type": "nested", "points": [{"type": "sum", "value": "x"}]}, None, "$.points[0].value"),
    ],
)
async def test_an_invalid_message_gets_an_error_saying_what_and_where(
    websocket_connect: WebSocketConnect,
    caplog: pytest.LogCaptureFixture,
    sent: Any,
    error: str | None,
    path: str | None,
) -> None:
    """An invalid message gets an error naming the problem and its field; the socket stays."""
    ws = await websocket_connect(room_app(), "/rooms/lobby")
    with caplog.at_level(logging.DEBUG, logger="aioendpoints"):
        await ws.send_json(sent)
        reply = await ws.receive_json()
        assert reply["type"] == "error"
        assert reply["path"] == path
        if error is not None:
            assert reply["error"] == error
        await ws.send_json({"type": "say", "text": "still here"})
        await ws.expect_json({"type": "said", "text": "still here", "by": "lobby"})
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert not [record for record in caplog.records if record.exc_info]


async def test_bad_json_gets_an_error_reply(websocket_connect: WebSocketConnect) -> None:
    """A text frame that is not JSON gets an error reply too, without a path."""
    ws = await websocket_connect(room_app(), "/rooms/lobby")
    await ws.send_text("{nope")
    reply = await ws.receive_json()
    assert reply["type"] == "error"
    assert reply["error"].startswith("JSON is malformed")
    assert reply["path"] is None


async def test_an_invalid_request_gets_the_error_with_its_id(
    websocket_connect: WebSocketConnect,
) -> None:
    """An invalid message that carries an id gets the error reply with that id."""
    ws = await websocket_connect(room_app(), "/rooms/lobby")
    await ws.send_json({"type": "add", "a": "two", "b": 3, "id": 9})
    await ws.expect_json(
        {"type": "error", "error": "Expected `int`, got `str`", "path": "$.a", "id": 9}
    )


async def test_many_invalid_messages_in_a_row_are_each_answered(
    websocket_connect: WebSocketConnect,
) -> None:
    """Invalid messages in a row each get their reply, and the next valid one is handled."""
    ws = await websocket_connect(room_app(), "/rooms/lobby")
    for _ in range(200):
        await ws.send_json({"type": "say"})
    for _ in range(200):
        assert (await ws.receive_json())["type"] == "error"
    await ws.send_json({"type": "say", "text": "ok"})
    await ws.expect_json({"type": "said", "text": "ok", "by": "lobby"})


async def test_invalid_messages_close_with_1007_when_the_route_says_so(
    each_mode_client: ModeClient, caplog: pytest.LogCaptureFixture
) -> None:
    """invalid_messages="close" closes with 1007 and says what was wrong, with no traceback."""
    client = await each_mode_client(room_app(invalid_messages="close"))
    ws = await connect(client, "/rooms/lobby")
    with caplog.at_level(logging.DEBUG, logger="aioendpoints"):
        await ws.send_json({"type": "say", "text": 5})
        await ws.expect_close(1007, "Expected `str`, got `int` at $.text")
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert not [record for record in caplog.records if record.exc_info]


async def test_a_rejected_request_gets_an_error_with_its_id(
    websocket_connect: WebSocketConnect, caplog: pytest.LogCaptureFixture
) -> None:
    """MessageRejected answers with its text and the request's id; nothing is logged."""
    ws = await websocket_connect(room_app(), "/rooms/lobby")
    await ws.send_json({"type": "add", "a": -1, "b": 3, "id": 4})
    rejected = {"type": "error", "error": "a must not be negative", "path": None}
    await ws.expect_json({**rejected, "id": 4})
    await ws.send_json({"type": "add", "a": -1, "b": 3})
    await ws.expect_json(rejected)
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]


async def test_a_request_whose_handler_raises_gets_an_error_reply(
    each_mode_client: ModeClient, caplog: pytest.LogCaptureFixture
) -> None:
    """A handler that raises on a request: an error reply with its id, one logged traceback."""
    ws = await connect(await each_mode_client(room_app()), "/rooms/lobby")
    await ws.send_json({"type": "add", "a": 13, "b": 0, "id": 5})
    await ws.expect_json({"type": "error", "error": "internal server error", "path": None, "id": 5})
    await ws.send_json({"type": "add", "a": 1, "b": 1, "id": 6})
    await ws.expect_json({"id": 6, "type": "sum", "value": 2})
    errors = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert errors[0].exc_info is not None
    assert "unlucky" in str(errors[0].exc_info[1])


async def test_a_handler_that_raises_without_a_request_closes_with_1011(
    each_mode_client: ModeClient, caplog: pytest.LogCaptureFixture
) -> None:
    """Without a request id, a failing handler is a server fault: 1011 and one traceback."""
    ws = await connect(await each_mode_client(room_app()), "/rooms/lobby")
    await ws.send_json({"type": "add", "a": 13, "b": 0})
    await ws.expect_close(1011)
    await eventually(lambda: [record for record in caplog.records if record.exc_info])
    tracebacks = [record for record in caplog.records if record.exc_info]
    assert len(tracebacks) == 1


async def test_a_handler_can_close_with_websocket_close(
    websocket_connect: WebSocketConnect,
) -> None:
    """WebSocketClose from a handler closes, request id or not."""
    routes = WebSocketRoutes()

    @routes.websocket_route("/")
    class Closing(WebSocketEndpoint):
        @on_message
        async def add(self, ws: WebSocket, message: Add) -> None:
            raise WebSocketClose(4000, "bye")

    ws = await websocket_connect(make_app(routes), "/")
    await ws.send_json({"type": "add", "a": 1, "b": 2, "id": 1})
    await ws.expect_close(4000, "bye")


async def test_a_reply_class_with_the_id_field_gets_it_set() -> None:
    """A reply whose class has the request id field gets the id in that field."""
    from aioendpoints.messages.codecs import codec_for

    class Done(msgspec.Struct, tag="done"):
        id: int | None = None

    codec = codec_for(receives=Add, sends=None)
    assert codec.encode(codec.reply(Done(), 3)) == b'{"type":"done","id":3}'
    assert codec.encode(codec.reply(Sum(value=1), "x")) == b'{"id":"x","type":"sum","value":1}'
    assert codec.encode(codec.reply({"ok": True}, 2)) == b'{"ok":true,"id":2}'


async def test_a_function_view_receives_typed_messages(
    websocket_connect: WebSocketConnect,
) -> None:
    """With messages=Say | Add, receive() returns decoded messages; send() encodes them."""
    routes = WebSocketRoutes()

    @routes.websocket_route("/", messages=Say | Add)
    async def view(ws: WebSocket) -> None:
        await ws.accept()
        async for message in ws:
            match message:
                case Say(text=text):
                    await ws.send(Said(text=text, by="view"))
                case Add(a=a, b=b):
                    await ws.send(Sum(value=a + b))

    ws = await websocket_connect(make_app(routes), "/")
    await ws.send_json({"type": "say", "text": "hi"})
    await ws.expect_json({"type": "said", "text": "hi", "by": "view"})
    await ws.send_json({"type": "add", "a": 1})
    await ws.expect_json(
        {"type": "error", "error": "Object missing required field `b`", "path": None}
    )
    await ws.send_json({"type": "add", "a": 1, "b": 2})
    await ws.expect_json({"type": "sum", "value": 3})


async def test_a_typed_message_published_to_a_group_reaches_every_member(
    websocket_connect: WebSocketConnect,
) -> None:
    """publish() of a Struct encodes it with its class, once, for every member."""
    routes = WebSocketRoutes()

    @routes.websocket_route("/")
    class Group(WebSocketEndpoint):
        groups = ("everyone",)

        @on_message
        async def say(self, ws: WebSocket, message: Say) -> None:
            await ws.publish("everyone", Said(text=message.text, by="group"))

    app = make_app(routes)
    first = await websocket_connect(app, "/")
    second = await websocket_connect(app, "/")
    await first.send_json({"type": "say", "text": "ready?"})
    await first.expect_json({"type": "said", "text": "ready?", "by": "group"})
    # The second member joined before the first one's message was handled.
    await second.expect_json({"type": "said", "text": "ready?", "by": "group"})


def test_encode_message_encodes_a_struct_once() -> None:
    """The group frame of a Struct is its msgspec JSON."""
    from aioendpoints.broadcast.frames import TEXT, encode_message

    assert encode_message(Said(text="x", by="y"), lambda value: "") == (
        TEXT,
        b'{"type":"said","text":"x","by":"y"}',
    )


# Checked when the class is defined ------------------------------------------------------


def test_two_handlers_for_one_class_are_refused() -> None:
    """Two handlers for one message class: a TypeError naming both, at class definition."""
    with pytest.raises(TypeError, match=r"first and second both handle Say"):

        class Twice(WebSocketEndpoint):
            @on_message
            async def first(self, ws: WebSocket, message: Say) -> None: ...

            @on_message(Say)
            async def second(self, ws: WebSocket, message: Any) -> None: ...


def test_a_handler_without_a_message_parameter_is_refused() -> None:
    """A handler must take (self, websocket, message)."""
    with pytest.raises(TypeError, match=r"take \(self, websocket, message\), got \(self, ws\)"):

        class NoMessage(WebSocketEndpoint):
            @on_message(Say)
            async def say(self, ws: WebSocket) -> None: ...


def test_an_unknown_annotation_is_refused() -> None:
    """A message parameter annotated with something other than message classes is an error."""
    with pytest.raises(TypeError, match=r"must be a msgspec.Struct or pydantic.BaseModel.*'dict'"):

        class Untyped(WebSocketEndpoint):
            @on_message
            async def say(self, ws: WebSocket, message: dict) -> None:  # type: ignore[type-arg]
                ...


def test_a_missing_annotation_is_refused() -> None:
    """Without decorator arguments, the message parameter needs its class as annotation."""
    with pytest.raises(TypeError, match=r"annotate the parameter 'message'"):

        class Bare(WebSocketEndpoint):
            @on_message
            async def say(self, ws, message):  # type: ignore[no-untyped-def]
                ...


def test_an_unresolvable_annotation_is_refused() -> None:
    """A class the annotations cannot find is named in the error."""

    class Local(msgspec.Struct, tag="local"):
        pass

    with pytest.raises(TypeError, match=r"cannot resolve the annotation of 'message' .*Local"):

        class Unresolved(WebSocketEndpoint):
            @on_message
            async def say(self, ws: WebSocket, message: Local) -> None: ...


def test_only_the_message_annotation_needs_resolving() -> None:
    """Other annotations may name what only a type checker sees (TYPE_CHECKING imports)."""
    local_websocket = WebSocket

    class Endpoint(WebSocketEndpoint):
        @on_message
        async def say(self, ws: local_websocket, message: Say) -> local_websocket:  # type: ignore[valid-type]
            raise NotImplementedError

    assert Endpoint.message_router is not None
    assert Endpoint.message_router.receives == (Say,)
    assert Endpoint.message_router.sends == ()


def test_untagged_structs_that_cannot_be_told_apart_are_refused() -> None:
    """Two Structs without tags cannot be told apart: the error says to tag them."""

    class One(msgspec.Struct):
        a: int

    class Two(msgspec.Struct):
        b: int

    with pytest.raises(TypeError, match=r"cannot tell One, Two apart: give each Struct its own"):

        class Ambiguous(WebSocketEndpoint):
            @on_message(One, Two)
            async def either(self, ws: WebSocket, message: Any) -> None: ...


def test_on_receive_with_handlers_is_refused() -> None:
    """Handlers and on_receive together: an error, since on_receive would never run."""
    with pytest.raises(TypeError, match=r"has on_message handlers and on_receive"):

        class Both(WebSocketEndpoint):
            async def on_receive(self, ws: WebSocket, data: Any) -> None: ...

            @on_message
            async def say(self, ws: WebSocket, message: Say) -> None: ...


def test_a_non_json_encoding_with_handlers_is_refused() -> None:
    """Handlers take JSON: another encoding is an error."""
    with pytest.raises(TypeError, match=r"drop encoding"):

        class Texty(WebSocketEndpoint):
            encoding = "text"

            @on_message
            async def say(self, ws: WebSocket, message: Say) -> None: ...


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"messages": dict}, "messages must be a msgspec.Struct"),
        ({"messages": Say, "invalid_messages": "ignore"}, "invalid_messages must be"),
        ({"messages": Say, "request_id": ""}, "request_id must be a field name"),
        ({"messages": Say, "value_type": "text"}, "drop value_type"),
    ],
)
def test_bad_message_options_are_refused_at_registration(
    options: dict[str, Any], error: str
) -> None:
    """Typed-message route options are checked when the route is added."""

    async def view(ws: WebSocket) -> None: ...

    with pytest.raises((TypeError, ValueError), match=error):
        WebSocketRoutes().add_websocket_route("/", view, **options)


def test_an_endpoint_route_cannot_take_the_messages_option() -> None:
    """An endpoint's messages come from its handlers, not from the route option."""
    with pytest.raises(TypeError, match="messages option is for function views"):
        WebSocketRoutes().add_websocket_route("/", Room, messages=Say)


# Test helpers ----------------------------------------------------------------------------


async def test_the_test_client_sends_and_expects_typed_messages(
    websocket_connect: WebSocketConnect,
) -> None:
    """send_message() encodes with the class; expect_message() decodes and compares."""
    ws = await websocket_connect(room_app(), "/rooms/lobby")
    await ws.send_message(Say(text="hi"))
    said = await ws.expect_message(Said(text="hi", by="lobby"))
    assert said.by == "lobby"
    await ws.send_message(Add(a=1, b=2))
    assert await ws.receive_message(Sum | Said) == Sum(value=3)


async def test_expect_message_fails_on_another_message(
    websocket_connect: WebSocketConnect,
) -> None:
    """A different message, or one of another class, fails the test with both shown."""
    ws = await websocket_connect(room_app(), "/rooms/lobby")
    await ws.send_message(Say(text="hi"))
    with pytest.raises(AssertionError, match=r"expected Said\(text='bye'.*got Said\(text='hi'"):
        await ws.expect_message(Said(text="bye", by="lobby"))
    await ws.send_message(Say(text="hi"))
    with pytest.raises(AssertionError, match=r"expected a Sum message .*Invalid value 'said'"):
        await ws.receive_message(Sum)


async def test_send_message_refuses_plain_values(websocket_connect: WebSocketConnect) -> None:
    """send_message() is for typed messages; send_json() takes the rest."""
    ws = await websocket_connect(room_app(), "/rooms/lobby")
    with pytest.raises(TypeError, match="takes a msgspec Struct or pydantic model"):
        await ws.send_message({"type": "say", "text": "hi"})
