"""OpenTelemetry: a span per handshake, continuing traceparent, one per connection, and
one per received message when asked."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import msgspec
import pytest
from aiohttp import web
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import aioendpoints
from aioendpoints import WebSocket, WebSocketEndpoint, WebSocketRoutes, on_message
from aioendpoints.observers import OBSERVER_KEY
from aioendpoints.tracing import TracingObserver

from .conftest import ModeClient, ModeServer
from .helpers import eventually, serving
from .rawws import RawWebSocket
from .server_modes import assert_one_traceback, assert_quiet_ending

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"


def traced_app(exporter: InMemorySpanExporter, **setup_options: object) -> web.Application:
    """An echo per room and a route that always refuses, traced into ``exporter``."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    routes = WebSocketRoutes()

    @routes.websocket_route("/rooms/{room}", value_type="text", caught_close_codes="all")
    async def room(ws: WebSocket, room: str) -> None:
        ws.user = "ada"
        await ws.accept()
        async for text in ws:
            if text == "bye":
                await ws.close(4000, "see you")
            else:
                await ws.send(text)

    @routes.websocket_route("/closed")
    async def closed(ws: WebSocket) -> None:
        ws.reject(403)

    app = web.Application()
    aioendpoints.setup(app, tracing=provider, **setup_options)  # type: ignore[arg-type]
    app.add_routes(routes)
    return app


def by_name(spans: tuple[ReadableSpan, ...], name: str) -> ReadableSpan:
    """The one span called ``name``."""
    (span,) = [span for span in spans if span.name == name]
    return span


async def test_handshake_and_connection_spans_continue_the_trace() -> None:
    """Both spans are children of traceparent's span, with route, code and counts."""
    exporter = InMemorySpanExporter()
    app = traced_app(exporter, metrics=True)
    async with serving(app) as url, aiohttp.ClientSession() as session:
        ws = await session.ws_connect(f"{url}/rooms/lobby", headers={"traceparent": TRACEPARENT})
        await ws.send_str("hello")
        assert await ws.receive_str(timeout=10) == "hello"
        await ws.send_str("bye")
        assert (await ws.receive(timeout=10)).type is aiohttp.WSMsgType.CLOSE
        await eventually(lambda: len(exporter.get_finished_spans()) == 2)
    spans = exporter.get_finished_spans()
    handshake = by_name(spans, "WebSocket handshake /rooms/{room}")
    connection = by_name(spans, "WebSocket /rooms/{room}")
    for span in (handshake, connection):
        assert span.context is not None
        assert span.parent is not None
        assert format(span.context.trace_id, "032x") == TRACE_ID
        assert format(span.parent.span_id, "016x") == PARENT_ID
        assert span.kind is SpanKind.SERVER
    assert handshake.attributes is not None
    assert connection.attributes is not None
    assert dict(handshake.attributes) == {
        "http.route": "/rooms/{room}",
        "url.path": "/rooms/lobby",
        "http.response.status_code": 101,
    }
    assert dict(connection.attributes) == {
        "http.route": "/rooms/{room}",
        "url.path": "/rooms/lobby",
        "websocket.connection_id": connection.attributes["websocket.connection_id"],
        "enduser.id": "ada",
        "websocket.close_code": 4000,
        "websocket.close_reason": "see you",
        "websocket.messages_received": 2,
        "websocket.messages_sent": 1,
        "websocket.bytes_received": 8,
        "websocket.bytes_sent": 5,
    }
    assert handshake.end_time is not None
    assert connection.start_time is not None
    assert handshake.end_time <= connection.start_time


async def test_a_refused_handshake_ends_its_span_with_the_status() -> None:
    """A refusal's span has its HTTP status; there is no connection span."""
    exporter = InMemorySpanExporter()
    async with serving(traced_app(exporter)) as url, aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError):
            await session.ws_connect(f"{url}/closed")
        await eventually(lambda: len(exporter.get_finished_spans()) == 1)
    (span,) = exporter.get_finished_spans()
    assert span.name == "WebSocket handshake /closed"
    assert span.attributes is not None
    assert span.attributes["http.response.status_code"] == 403
    assert span.status.status_code is StatusCode.UNSET
    assert span.parent is None  # no traceparent: a new trace


# Spans per message ----------------------------------------------------------------------


def span_provider(exporter: InMemorySpanExporter) -> TracerProvider:
    """A tracer provider that exports every span into ``exporter`` as it ends."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


def messages_of(spans: tuple[ReadableSpan, ...]) -> list[ReadableSpan]:
    """The message spans among ``spans``, in the order they started."""
    received = [span for span in spans if span.name.startswith("WebSocket receive ")]
    return sorted(received, key=lambda span: span.start_time or 0)


def child_of(span: ReadableSpan, parent: ReadableSpan) -> bool:
    """Whether ``span`` is a direct child of ``parent``, in its trace."""
    assert span.context is not None
    assert parent.context is not None
    return (
        span.parent is not None
        and span.parent.span_id == parent.context.span_id
        and span.context.trace_id == parent.context.trace_id
    )


def endpoint_app(
    provider: TracerProvider, path: str, endpoint: type[WebSocketEndpoint], **setup_options: Any
) -> web.Application:
    """An application serving ``endpoint`` at ``path``, traced through ``provider``."""
    routes = WebSocketRoutes()
    routes.websocket_route(path)(endpoint)
    app = web.Application()
    aioendpoints.setup(app, tracing=provider, **setup_options)
    app.add_routes(routes)
    return app


async def test_each_received_message_gets_a_span_under_the_connection_span() -> None:
    """Text and binary messages each get a CONSUMER span, child of the connection's."""
    exporter = InMemorySpanExporter()
    routes = WebSocketRoutes()

    @routes.websocket_route("/rooms/{room}")
    async def room(ws: WebSocket, room: str) -> None:
        await ws.accept()
        while True:
            message = await ws.receive_message()
            if isinstance(message, str):
                await ws.send_text(message)
            else:
                await ws.send_bytes(message)

    app = web.Application()
    aioendpoints.setup(app, tracing=span_provider(exporter), trace_messages=True)
    app.add_routes(routes)
    async with serving(app) as url, aiohttp.ClientSession() as session:
        ws = await session.ws_connect(f"{url}/rooms/lobby", headers={"traceparent": TRACEPARENT})
        await ws.send_str("hello")
        assert await ws.receive_str(timeout=10) == "hello"
        await ws.ping()  # control frames get no span
        await ws.send_str("héllo")
        assert await ws.receive_str(timeout=10) == "héllo"
        await ws.send_bytes(b"\x00\x01\x02")
        assert await ws.receive_bytes(timeout=10) == b"\x00\x01\x02"
        await ws.close()
        await eventually(lambda: len(exporter.get_finished_spans()) == 5)
    spans = exporter.get_finished_spans()
    connection = by_name(spans, "WebSocket /rooms/{room}")
    received = messages_of(spans)
    assert [span.name for span in received] == ["WebSocket receive /rooms/{room}"] * 3
    assert [dict(span.attributes or {}) for span in received] == [
        {
            "http.route": "/rooms/{room}",
            "messaging.operation.type": "process",
            "messaging.message.body.size": size,
            "websocket.message_type": kind,
        }
        for size, kind in ((5, "text"), (6, "text"), (3, "binary"))
    ]
    for span in received:
        assert span.kind is SpanKind.CONSUMER
        assert child_of(span, connection)
        assert span.context is not None
        assert format(span.context.trace_id, "032x") == TRACE_ID
        assert span.status.status_code is StatusCode.UNSET
    ends = [span.end_time or 0 for span in received]
    starts = [span.start_time or 0 for span in received]
    assert ends[0] <= starts[1]
    assert ends[1] <= starts[2]
    assert (connection.end_time or 0) >= ends[2]


async def test_spans_the_view_starts_are_children_of_the_message_span() -> None:
    """A function view's own spans while it handles a message nest in that message's span."""
    exporter = InMemorySpanExporter()
    provider = span_provider(exporter)
    tracer = provider.get_tracer("the-app")
    routes = WebSocketRoutes()

    after: list[trace.Span] = []

    @routes.websocket_route("/lookup", value_type="text")
    async def lookup(ws: WebSocket) -> None:
        await ws.accept()
        async for text in ws:
            with tracer.start_as_current_span(f"lookup {text}"):
                await ws.send(text.upper())
        after.append(trace.get_current_span())

    app = web.Application()
    aioendpoints.setup(app, tracing=provider, trace_messages=True)
    app.add_routes(routes)
    async with serving(app) as url, aiohttp.ClientSession() as session:
        ws = await session.ws_connect(f"{url}/lookup")
        for text in ("a", "b"):
            await ws.send_str(text)
            assert await ws.receive_str(timeout=10) == text.upper()
        await ws.close()
        await eventually(lambda: len(exporter.get_finished_spans()) == 6)
    spans = exporter.get_finished_spans()
    first, second = messages_of(spans)
    assert child_of(by_name(spans, "lookup a"), first)
    assert child_of(by_name(spans, "lookup b"), second)
    assert (first.end_time or 0) >= (by_name(spans, "lookup a").end_time or 0)
    assert after == [trace.INVALID_SPAN]  # once the messages are handled, none is current


async def test_an_endpoint_handles_each_message_inside_its_span() -> None:
    """on_receive runs with the message's span current: its own spans are children."""
    exporter = InMemorySpanExporter()
    provider = span_provider(exporter)
    tracer = provider.get_tracer("the-app")
    current: list[trace.Span] = []

    class Echo(WebSocketEndpoint):
        encoding = "text"

        async def on_receive(self, websocket: WebSocket, data: str) -> None:
            current.append(trace.get_current_span())
            with tracer.start_as_current_span("handling"):
                await websocket.send(data)

    app = endpoint_app(provider, "/echo", Echo, trace_messages=True)
    async with serving(app) as url, aiohttp.ClientSession() as session:
        ws = await session.ws_connect(f"{url}/echo")
        await ws.send_str("hi")
        assert await ws.receive_str(timeout=10) == "hi"
        await ws.close()
        await eventually(lambda: len(exporter.get_finished_spans()) == 4)
    spans = exporter.get_finished_spans()
    (message,) = messages_of(spans)
    assert child_of(by_name(spans, "handling"), message)
    assert child_of(message, by_name(spans, "WebSocket /echo"))
    assert [span.get_span_context() for span in current] == [message.context]


async def test_a_connection_whose_trace_is_not_sampled_keeps_its_messages_out() -> None:
    """traceparent says not sampled: no span is exported, not even the view's own."""
    exporter = InMemorySpanExporter()
    provider = span_provider(exporter)  # parent-based sampling, the SDK's default
    tracer = provider.get_tracer("the-app")
    seen: list[trace.SpanContext] = []
    routes = WebSocketRoutes()

    @routes.websocket_route("/echo", value_type="text")
    async def echo(ws: WebSocket) -> None:
        await ws.accept()
        async for text in ws:
            with tracer.start_as_current_span("handling") as span:
                seen.append(span.get_span_context())
                await ws.send(text)

    app = web.Application()
    aioendpoints.setup(app, tracing=provider, trace_messages=True)
    app.add_routes(routes)
    unsampled = f"00-{TRACE_ID}-{PARENT_ID}-00"
    async with serving(app) as url, aiohttp.ClientSession() as session:
        ws = await session.ws_connect(f"{url}/echo", headers={"traceparent": unsampled})
        for text in ("one", "two"):
            await ws.send_str(text)
            assert await ws.receive_str(timeout=10) == text
        await ws.close()
        await eventually(lambda: len(app[aioendpoints.CONNECTIONS_KEY]) == 0)
    assert [format(context.trace_id, "032x") for context in seen] == [TRACE_ID] * 2
    assert not any(context.trace_flags.sampled for context in seen)
    assert exporter.get_finished_spans() == ()


class FailsOnBoom(WebSocketEndpoint):
    encoding = "text"

    async def on_receive(self, websocket: WebSocket, data: str) -> None:
        if data == "boom":
            raise RuntimeError("boom")
        await websocket.send(data)


async def test_a_handler_that_raises_fails_its_message_span(
    each_mode_client: ModeClient, caplog: pytest.LogCaptureFixture
) -> None:
    """The message span has ERROR and the exception; the log has exactly one traceback."""
    exporter = InMemorySpanExporter()
    app = endpoint_app(span_provider(exporter), "/fails", FailsOnBoom, trace_messages=True)
    client = await each_mode_client(app)
    ws = await client.ws_connect("/fails")
    await ws.send_str("fine")
    assert await ws.receive_str(timeout=10) == "fine"
    await ws.send_str("boom")
    closing = await ws.receive(timeout=10)
    assert (closing.type, closing.data) == (aiohttp.WSMsgType.CLOSE, 1011)
    await eventually(lambda: len(exporter.get_finished_spans()) == 4, within=10)
    spans = exporter.get_finished_spans()
    fine, boom = messages_of(spans)
    assert fine.status.status_code is StatusCode.UNSET
    assert not fine.events
    assert boom.status.status_code is StatusCode.ERROR
    assert boom.status.description == "RuntimeError: boom"
    assert boom.attributes is not None
    assert boom.attributes["error.type"] == "RuntimeError"
    (event,) = boom.events
    assert event.name == "exception"
    assert event.attributes is not None
    assert event.attributes["exception.type"] == "RuntimeError"
    assert event.attributes["exception.message"] == "boom"
    connection = by_name(spans, "WebSocket /fails")
    assert connection.status.status_code is StatusCode.ERROR
    assert not connection.events  # recorded once, where it happened
    record = assert_one_traceback(caplog)
    assert record.exc_info is not None
    assert record.exc_info[0] is RuntimeError


async def test_without_message_spans_a_fault_is_recorded_in_the_connection_span(
    each_mode_client: ModeClient, caplog: pytest.LogCaptureFixture
) -> None:
    """Messages not traced: the connection's span has the exception and ERROR."""
    exporter = InMemorySpanExporter()
    app = endpoint_app(span_provider(exporter), "/fails", FailsOnBoom)
    client = await each_mode_client(app)
    ws = await client.ws_connect("/fails")
    await ws.send_str("boom")
    closing = await ws.receive(timeout=10)
    assert (closing.type, closing.data) == (aiohttp.WSMsgType.CLOSE, 1011)
    await eventually(lambda: len(exporter.get_finished_spans()) == 2, within=10)
    connection = by_name(exporter.get_finished_spans(), "WebSocket /fails")
    assert connection.status.status_code is StatusCode.ERROR
    (event,) = connection.events
    assert event.attributes is not None
    assert event.attributes["exception.type"] == "RuntimeError"
    assert_one_traceback(caplog)


class Add(msgspec.Struct, tag="add"):
    a: int
    id: int | None = None


class Sum(msgspec.Struct, tag="sum"):
    value: int


class Calculator(WebSocketEndpoint):
    @on_message
    async def add(self, websocket: WebSocket, message: Add) -> Sum:
        if message.a == 13:
            raise RuntimeError("unlucky")
        return Sum(message.a)


async def test_a_typed_request_whose_handler_raises_fails_its_message_span(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The request gets an error reply and the connection goes on; its span has ERROR.

    Each span names the message's class, unless the message is invalid.
    """
    exporter = InMemorySpanExporter()
    app = endpoint_app(span_provider(exporter), "/add", Calculator, trace_messages=True)
    async with serving(app) as url, aiohttp.ClientSession() as session:
        ws = await session.ws_connect(f"{url}/add")
        await ws.send_str('{"type": "add", "a": 13, "id": 1}')
        assert (await ws.receive_json(timeout=10))["error"] == "internal server error"
        await ws.send_str('{"type": "add", "a": 2, "id": 2}')
        assert (await ws.receive_json(timeout=10))["id"] == 2
        await ws.send_str('{"type": "subtract"}')
        assert (await ws.receive_json(timeout=10))["type"] == "error"
        await ws.close()
        await eventually(lambda: len(exporter.get_finished_spans()) == 5)
    failed, fine, invalid = messages_of(exporter.get_finished_spans())
    for span in (failed, fine):
        assert span.attributes is not None
        assert span.attributes["websocket.message_class"] == "Add"
    assert invalid.attributes is not None
    assert "websocket.message_class" not in invalid.attributes
    assert invalid.status.status_code is StatusCode.UNSET  # the client's mistake
    assert failed.status.status_code is StatusCode.ERROR
    assert [event.name for event in failed.events] == ["exception"]
    assert fine.status.status_code is StatusCode.UNSET
    assert not fine.events
    assert_one_traceback(caplog)


async def test_a_peer_that_vanishes_mid_message_ends_its_span_quietly(
    each_mode_server: ModeServer, caplog: pytest.LogCaptureFixture
) -> None:
    """The span of the message being handled ends with the connection: no error, no log."""
    handling = asyncio.Event()
    gone = asyncio.Event()

    class Slow(WebSocketEndpoint):
        encoding = "text"

        async def on_receive(self, websocket: WebSocket, data: str) -> None:
            handling.set()
            await gone.wait()  # the test server cancels this; in production it goes on
            await websocket.send(data)

    exporter = InMemorySpanExporter()
    app = endpoint_app(span_provider(exporter), "/slow", Slow, trace_messages=True)
    server = await each_mode_server(app)
    client = await RawWebSocket.connect("127.0.0.1", server.port or 0, "/slow")
    client.send_text("wait")
    await asyncio.wait_for(handling.wait(), 10)
    client.reset()
    gone.set()
    await eventually(lambda: len(exporter.get_finished_spans()) == 3, within=10)
    spans = exporter.get_finished_spans()
    (message,) = messages_of(spans)
    connection = by_name(spans, "WebSocket /slow")
    assert child_of(message, connection)
    assert message.status.status_code is StatusCode.UNSET
    assert not message.events
    assert connection.attributes is not None
    assert connection.attributes["websocket.close_code"] == 1006
    assert_quiet_ending(caplog)


def receive_paths_app(
    exporter: InMemorySpanExporter, route_option: bool | None, **setup_options: Any
) -> tuple[web.Application, list[bool]]:
    """An echo app noting, per connection, whether it receives through aiohttp's receive."""
    direct: list[bool] = []
    routes = WebSocketRoutes()
    options: dict[str, Any] = {} if route_option is None else {"trace_messages": route_option}

    @routes.websocket_route("/echo", **options)
    async def echo(ws: WebSocket) -> None:
        await ws.accept()
        assert ws.response is not None
        direct.append(
            (ws._receive_message, ws._receive_from) == (web.WebSocketResponse.receive, ws.response)
        )
        async for message in ws:
            await ws.send(message)

    app = web.Application()
    aioendpoints.setup(app, tracing=span_provider(exporter), **setup_options)
    app.add_routes(routes)
    return app, direct


@pytest.mark.parametrize(
    ("app_option", "route_option", "traced"),
    [
        (False, None, False),
        (True, None, True),
        (True, False, False),
        (False, True, True),
    ],
)
async def test_messages_are_traced_only_when_asked(
    app_option: bool, route_option: bool | None, traced: bool
) -> None:
    """Not asked (app-wide or by the route): no span and aiohttp's own receive, untouched."""
    exporter = InMemorySpanExporter()
    app, direct = receive_paths_app(exporter, route_option, trace_messages=app_option)
    async with serving(app) as url, aiohttp.ClientSession() as session:
        ws = await session.ws_connect(f"{url}/echo")
        for text in ("one", "two"):
            await ws.send_str(text)
            assert await ws.receive_str(timeout=10) == text
        await ws.close()
        await eventually(lambda: len(exporter.get_finished_spans()) == (4 if traced else 2))
    assert direct == [not traced]
    assert len(messages_of(exporter.get_finished_spans())) == (2 if traced else 0)


def test_trace_messages_turns_tracing_on() -> None:
    """setup(app, trace_messages=True) alone traces, through the global tracer provider."""
    app = web.Application()
    aioendpoints.setup(app, trace_messages=True)
    assert isinstance(app[OBSERVER_KEY], TracingObserver)


def test_the_route_option_is_checked() -> None:
    """trace_messages takes True, False or None; a misspelling gets a did-you-mean."""
    routes = WebSocketRoutes()

    async def view(ws: WebSocket) -> None:
        await ws.accept()

    with pytest.raises(TypeError, match="trace_messages must be True, False or None, got 'yes'"):
        routes.websocket_route("/a", trace_messages="yes")(view)  # type: ignore[typeddict-item]
    with pytest.raises(TypeError, match=r"did you mean trace_messages\?"):
        routes.websocket_route("/b", trace_message=True)(view)  # type: ignore[call-arg]
