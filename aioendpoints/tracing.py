"""OpenTelemetry spans for handshakes, connections and messages (the ``tracing`` extra).

``aioendpoints.setup(app, tracing=True)`` wraps the application's connection observer: each
handshake continues the trace of the request's ``traceparent`` header (through the
globally configured propagator, W3C Trace Context by default) with a span that ends when
the handshake is accepted or refused, and each accepted connection gets a span of its own,
from ``accept()`` to its close, with the route, the close code and the message counts as
attributes. Spans go to the global tracer provider (``tracing=True``) or the one given
(``tracing=provider``); with none configured, the API's default does nothing.

With ``trace_messages`` (app-wide in :func:`~aioendpoints.setup`, or a route option), each
text or binary message received gets a span too, a child of the connection's: it starts
when ``receive()`` returns the message and ends when the view asks for the next one (or
the connection ends), and it is the current span meanwhile, so that the spans the view
starts while handling the message are its children. A connection whose trace is not
sampled gets no message spans (they would not be sampled either), only its own span
current while a message is handled. Without it, nothing is done per message.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any, Final

from aiohttp import WSMessage, WSMsgType, web

from .close_codes import CloseCode
from .exceptions import WebSocketDisconnect
from .monitoring import Monitor
from .observers import ConnectionObserver, ReceiveMessage, SendFrame, route_of
from .request_keys import request_key
from .serialization import MessageCodec

try:
    from opentelemetry import context as otel_context
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
_TEXT = WSMsgType.TEXT
_BINARY = WSMsgType.BINARY


class _ConnectionSpans:
    """The spans of one connection: its own, and the one of the message being handled."""

    __slots__ = ("connection", "error", "message", "outer")

    def __init__(self, connection: Span) -> None:
        self.connection = connection
        #: The span of the message received last, until the view asks for the next one
        #: (the connection's own when its trace is not sampled).
        self.message: Span | None = None
        #: The context that was current before the message's span was made current.
        self.outer: Context | None = None
        #: What the view raised, if it raised.
        self.error: BaseException | None = None

    def end_message(self) -> None:
        """End the message's span, if one is open, and make the context before it current."""
        span = self.message
        if span is None:
            return
        self.message = None
        if span is not self.connection:
            span.end()
        # Set back rather than detached with attach()'s token: the next receive may be
        # called from another task (a reader task of the view's), where the token does
        # not belong, and a failed detach is logged as an error.
        if self.outer is not None:
            otel_context.attach(self.outer)
            self.outer = None


class TracingObserver(ConnectionObserver):
    """Spans for handshakes and connections, around the monitor that counts them.

    With ``trace_messages``, a span per received message too, on the routes that do not
    say otherwise (their ``trace_messages`` option).
    """

    def __init__(
        self,
        monitor: Monitor,
        tracer_provider: TracerProvider | None = None,
        *,
        trace_messages: bool = False,
    ) -> None:
        self._monitor = monitor
        self._tracer = trace.get_tracer(_TRACER_NAME, tracer_provider=tracer_provider)
        self._trace_messages = trace_messages
        self._spans: dict[WebSocket, _ConnectionSpans] = {}

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
        """End the handshake's span (101) and start the connection's.

        With messages traced on the connection's route, its receive goes through
        a wrapper that makes each message's span.
        """
        receive, send = self._monitor.opened(websocket, receive, send)
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
        spans = self._spans[websocket] = _ConnectionSpans(
            self._tracer.start_span(
                f"WebSocket {route}", context=context, kind=SpanKind.SERVER, attributes=attributes
            )
        )
        trace_messages = websocket.options.trace_messages
        if trace_messages is None:
            trace_messages = self._trace_messages
        if trace_messages:
            if spans.connection.is_recording():
                receive = self._traced_receive(route, spans, receive, websocket.message_codec)
            else:
                receive = _unsampled_receive(spans, receive)
        return receive, send

    def _traced_receive(
        self,
        route: str,
        spans: _ConnectionSpans,
        receive: ReceiveMessage,
        codec: MessageCodec | None,
    ) -> ReceiveMessage:
        """``receive``, ending the last message's span first and starting the next one's.

        On a route with typed messages, the span also says the message's class.
        """
        decode = None if codec is None else codec.decode
        start_span = self._tracer.start_span
        name = f"WebSocket receive {route}"
        parent = trace.set_span_in_context(spans.connection)
        consumer = SpanKind.CONSUMER
        get_current = otel_context.get_current
        attach = otel_context.attach
        set_span_in_context = trace.set_span_in_context

        async def traced() -> WSMessage:
            if spans.message is not None:
                spans.end_message()
            message = await receive()
            kind = message.type
            if kind is _TEXT:
                data = message.data
                # isascii() is a flag check: no encoding for the common case.
                size = len(data) if data.isascii() else len(data.encode())
                frame = "text"
            elif kind is _BINARY:
                size = len(message.data)
                frame = "binary"
            else:
                return message
            attributes: dict[str, Any] = {
                "http.route": route,
                "messaging.operation.type": "process",
                "messaging.message.body.size": size,
                "websocket.message_type": frame,
            }
            if decode is not None:
                # Decoded a second time, for its class only: with msgspec a tenth of a
                # microsecond for a small message, next to some 12 for the span itself. An
                # invalid message is left to the connection's own decoding, which answers it.
                with contextlib.suppress(Exception):
                    attributes["websocket.message_class"] = type(decode(message.data)).__name__
            span = start_span(name, context=parent, kind=consumer, attributes=attributes)
            outer = get_current()
            spans.message = span
            spans.outer = outer
            # The caller awaits this coroutine in its own task, so the span stays current
            # for it after the return: the view handles the message inside the span.
            attach(set_span_in_context(span, outer))
            return message

        return traced

    def failed(self, websocket: WebSocket, error: Exception) -> None:
        """Record a handler's fault in the span of the message it was handling, if traced."""
        spans = self._spans.get(websocket)
        if spans is not None and spans.message is not None:
            _record(spans.message, error, fault=True)

    def raised(self, websocket: WebSocket, error: BaseException) -> None:
        """Keep what the view raised, for :meth:`closed` to record in its spans."""
        spans = self._spans.get(websocket)
        if spans is not None:
            spans.error = error

    def closed(self, websocket: WebSocket) -> None:
        """End the message's span, if open, then the connection's, with its close code and counts.

        When the view raised (anything but a disconnect or its task's cancellation), the
        exception is recorded in the message's span, else in the connection's; a close
        with 1011 (a server fault) sets the error status.
        """
        self._monitor.closed(websocket)
        spans = self._spans.pop(websocket, None)
        if spans is None:
            return
        code = websocket.close_code or CloseCode.ABNORMAL_CLOSURE
        fault = code == CloseCode.INTERNAL_ERROR
        error = spans.error
        if isinstance(error, WebSocketDisconnect | asyncio.CancelledError):
            error = None
        message = spans.message
        if message is not None:
            if error is not None:
                _record(message, error, fault)
                error = None
            spans.end_message()
        span = spans.connection
        span.set_attribute("websocket.close_code", code)
        if websocket.close_reason:
            span.set_attribute("websocket.close_reason", websocket.close_reason)
        if websocket.user is not None:
            span.set_attribute("enduser.id", websocket.user)
        counts = websocket.message_counts
        if counts is not None:
            span.set_attribute("websocket.messages_received", counts.messages_received)
            span.set_attribute("websocket.messages_sent", counts.messages_sent)
            span.set_attribute("websocket.bytes_received", counts.bytes_received)
            span.set_attribute("websocket.bytes_sent", counts.bytes_sent)
        if error is not None:
            _record(span, error, fault)
        if fault:
            span.set_status(Status(StatusCode.ERROR, "closed with 1011"))
        span.end()


def _unsampled_receive(spans: _ConnectionSpans, receive: ReceiveMessage) -> ReceiveMessage:
    """``receive`` for a connection whose trace is not sampled: no span per message.

    With the SDK's parent-based sampling the messages' spans would not be sampled either;
    not making them saves most of their cost. The connection's span is made current while
    a message is handled instead, so that the view's own spans stay out of the trace too,
    as they would under an unsampled message span.
    """
    connection = spans.connection
    get_current = otel_context.get_current
    attach = otel_context.attach
    # The context around the messages is the same one each time (end_message() sets it
    # back): the context made from it is kept rather than made again per message.
    last_outer: Context | None = None
    current: Context | None = None

    async def unsampled() -> WSMessage:
        nonlocal last_outer, current
        if spans.message is not None:
            spans.end_message()
        message = await receive()
        kind = message.type
        if kind is _TEXT or kind is _BINARY:
            outer = get_current()
            if outer is not last_outer or current is None:
                last_outer = outer
                current = trace.set_span_in_context(connection, outer)
            spans.message = connection
            spans.outer = outer
            attach(current)
        return message

    return unsampled


def _record(span: Span, error: BaseException, fault: bool) -> None:
    """Record ``error`` in ``span``: an exception event, ``error.type`` and, for a fault, ERROR."""
    span.record_exception(error)
    span.set_attribute("error.type", type(error).__qualname__)
    if fault:
        span.set_status(Status(StatusCode.ERROR, f"{type(error).__qualname__}: {error}"))
