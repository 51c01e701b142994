"""OpenTelemetry: a span per handshake, continuing traceparent, and one per connection."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp import web
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import aioendpoints
from aioendpoints import WebSocket, WebSocketRoutes

from .helpers import eventually, serving

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
