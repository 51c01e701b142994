"""OpenTelemetry spans for handshakes and connections (the ``tracing`` extra).

``aioendpoints.setup(app, tracing=True)`` wraps the application's connection observer: each
handshake continues the trace of the request's ``traceparent`` header (through the
globally configured propagator, W3C Trace Context by default) with a span that ends when
the handshake is accepted or refused, and each accepted connection gets a span of its own,
from ``accept()`` to its close, with the route, the close code and the message counts as
attributes. Spans go to the global tracer provider (``tracing=True``) or the one given
(``tracing=provider``); with none configured, the API's default does nothing. Nothing is
done per message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from aiohttp import web

from .close_codes import CloseCode
from .monitoring import Monitor
from .observers import ConnectionObserver, ReceiveMessage, SendFrame, route_of
from .request_keys import request_key

try:
    from opentelemetry import propagate, trace
    from opentelemetry.context import Context
    from opentelemetry.trace import Span, SpanKind, Status, StatusCode, TracerProvider
except ImportError as error:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "aioendpoints' tracing needs OpenTelemetry: pip install 'aioendpoints[tracing]'"
    ) from error

if TYPE_CHECKING:
    from .websocket import WebSocket

__all__ = ["TracingObserver"]

#: The handshake span and the trace context it continues, kept on the request.
_HANDSHAKE_KEY: Final = request_key("aioendpoints.handshake_span")

_TRACER_NAME = "aioendpoints"


class TracingObserver(ConnectionObserver):
    """Spans for handshakes and connections, around the monitor that counts them."""

    def __init__(self, monitor: Monitor, tracer_provider: TracerProvider | None = None) -> None:
        self._monitor = monitor
        self._tracer = trace.get_tracer(_TRACER_NAME, tracer_provider=tracer_provider)
        self._spans: dict[WebSocket, Span] = {}

    def handshake(self, request: web.Request) -> None:
        """Start the handshake's span, in the trace of the request's ``traceparent``."""
        context = propagate.extract(request.headers)
        route = route_of(request)
        span = self._tracer.start_span(
            f"WebSocket handshake {route}",
            context=context,
            kind=SpanKind.SERVER,
            attributes={"http.route": route, "url.path": request.path},
        )
        request[_HANDSHAKE_KEY] = (span, context)
        self._monitor.handshake(request)

    def refused(self, request: web.Request, status: int) -> None:
        """End the handshake's span with the refusal's status."""
        self._monitor.refused(request, status)
        started = request.get(_HANDSHAKE_KEY)
        if started is not None:
            span, _ = started
            span.set_attribute("http.response.status_code", status)
            if status >= 500:
                span.set_status(Status(StatusCode.ERROR))
            span.end()

    def opened(
        self, websocket: WebSocket, receive: ReceiveMessage, send: SendFrame
    ) -> tuple[ReceiveMessage, SendFrame]:
        """End the handshake's span (101) and start the connection's."""
        paths = self._monitor.opened(websocket, receive, send)
        request = websocket.request
        started = request.get(_HANDSHAKE_KEY)
        context: Context | None = None
        if started is not None:
            span, context = started
            span.set_attribute("http.response.status_code", 101)
            span.end()
        route = websocket.route
        attributes: dict[str, Any] = {
            "http.route": route,
            "url.path": request.path,
            "websocket.connection_id": websocket.id,
        }
        if websocket.user is not None:
            attributes["enduser.id"] = websocket.user
        self._spans[websocket] = self._tracer.start_span(
            f"WebSocket {route}", context=context, kind=SpanKind.SERVER, attributes=attributes
        )
        return paths

    def closed(self, websocket: WebSocket) -> None:
        """End the connection's span with its close code and counts."""
        record = self._monitor.records.get(websocket)
        self._monitor.closed(websocket)
        span = self._spans.pop(websocket, None)
        if span is None:
            return
        code = websocket.close_code or CloseCode.ABNORMAL_CLOSURE
        span.set_attribute("websocket.close_code", code)
        if websocket.close_reason:
            span.set_attribute("websocket.close_reason", websocket.close_reason)
        if websocket.user is not None:
            span.set_attribute("enduser.id", websocket.user)
        if record is not None and self._monitor.count_messages:
            span.set_attribute("websocket.messages_received", record.messages_received)
            span.set_attribute("websocket.messages_sent", record.messages_sent)
            span.set_attribute("websocket.bytes_received", record.bytes_received)
            span.set_attribute("websocket.bytes_sent", record.bytes_sent)
        if code == CloseCode.INTERNAL_ERROR:
            span.set_status(Status(StatusCode.ERROR, "closed with 1011"))
        span.end()
