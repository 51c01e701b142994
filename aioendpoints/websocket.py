"""The :class:`WebSocket`: one connection, with Bocadillo's friendly API over aiohttp's."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterable, Mapping
from types import SimpleNamespace, TracebackType
from typing import TYPE_CHECKING, Any, NamedTuple, NoReturn

from aiohttp import WebSocketError, WSMsgType, web
from multidict import CIMultiDictProxy, MultiMapping
from yarl import URL

from .close_codes import CloseCode, is_sendable_close_code
from .exceptions import (
    InvalidData,
    UnsupportedData,
    WebSocketDisconnect,
    WebSocketStateError,
)
from .limits import (
    AUTH_TIMEOUT_CLOSE,
    IDLE_TIMEOUT_CLOSE,
    RATE_LIMIT_CLOSE,
    SEND_TIMEOUT_CLOSE,
    SendGuard,
    TokenBucket,
)
from .options import RouteOptions, ValueType, check_value_type
from .policy import peer_close_reply
from .refusals import http_error

if TYPE_CHECKING:
    from .application import ConnectionRegistry

__all__ = ["Address", "WebSocket"]

# Connection phases, as in the WebSocket API of browsers.
_CONNECTING, _OPEN, _CLOSED = 0, 1, 2

_TEXT = WSMsgType.TEXT
_BINARY = WSMsgType.BINARY
_CLOSE = WSMsgType.CLOSE
_FRAME_NAMES = {_TEXT: "text", _BINARY: "binary"}
_MAX_REASON_BYTES = 123  # RFC 6455 §5.5: control frame payloads are at most 125 bytes.


class Address(NamedTuple):
    """The peer's address: host and port."""

    host: str
    port: int


class WebSocket:
    """A WebSocket connection, as a view or an endpoint sees it.

    Created by aioendpoints for each incoming connection. Call :meth:`accept` to complete
    the handshake, then :meth:`receive` and :meth:`send` values of the route's value type,
    and :meth:`close` when done. The aiohttp request and
    :class:`~aiohttp.web.WebSocketResponse` stay reachable as :attr:`request` and
    :attr:`response`.
    """

    __slots__ = (
        "_auth_timer",
        "_close_code",
        "_close_reason",
        "_closed_here",
        "_options",
        "_phase",
        "_rate_limit",
        "_receive_frame",
        "_receive_json",
        "_receive_type",
        "_registry",
        "_send_guard",
        "_send_type",
        "_state",
        "path_params",
        "request",
        "response",
    )

    def __init__(
        self,
        request: web.Request,
        options: RouteOptions | None = None,
        path_params: Mapping[str, Any] | None = None,
    ) -> None:
        #: The aiohttp request of the handshake.
        self.request = request
        #: The aiohttp response behind the connection; ``None`` until :meth:`accept`.
        self.response: web.WebSocketResponse | None = None
        #: The route parameters, converted by the view's annotations.
        self.path_params: Mapping[str, Any] = (
            dict(request.match_info) if path_params is None else path_params
        )
        self._options = options or RouteOptions()
        self._phase = _CONNECTING
        self._close_code: int | None = None
        self._close_reason = ""
        self._state: SimpleNamespace | None = None
        self._registry: ConnectionRegistry | None = None
        # Limits that cost something per message are set up by accept(), and only when
        # the route configures them.
        self._rate_limit: TokenBucket | None = None
        self._send_guard: SendGuard | None = None
        self._auth_timer: asyncio.TimerHandle | None = None
        #: Whether this side closed first, so the view's WebSocketDisconnect is expected.
        self._closed_here = False
        self.receive_type = self._options.receive_type
        self.send_type = self._options.send_type

    def __repr__(self) -> str:
        phase = ("connecting", "open", "closed")[self._phase]
        return f"<WebSocket {self.request.path} {phase}>"

    # Value types -------------------------------------------------------------------------

    @property
    def receive_type(self) -> ValueType:
        """What :meth:`receive` returns: ``"text"``, ``"bytes"`` or ``"json"``."""
        return self._receive_type

    @receive_type.setter
    def receive_type(self, value: ValueType) -> None:
        self._receive_type = check_value_type(value, "receive_type")
        # Chosen once here so that receive() does not look the value type up per message.
        self._receive_frame = _BINARY if value == "bytes" else _TEXT
        self._receive_json = value == "json"

    @property
    def send_type(self) -> ValueType:
        """What :meth:`send` takes: ``"text"``, ``"bytes"`` or ``"json"``."""
        return self._send_type

    @send_type.setter
    def send_type(self, value: ValueType) -> None:
        self._send_type = check_value_type(value, "send_type")

    @property
    def value_type(self) -> ValueType | None:
        """The value type of both directions, or ``None`` when they differ; settable."""
        return self._receive_type if self._receive_type == self._send_type else None

    @value_type.setter
    def value_type(self, value: ValueType) -> None:
        self.receive_type = value
        self.send_type = value

    # The handshake request ---------------------------------------------------------------

    @property
    def url(self) -> URL:
        """The URL the client connected to."""
        return self.request.url

    @property
    def headers(self) -> CIMultiDictProxy[str]:
        """The handshake request's headers."""
        return self.request.headers

    @property
    def query_params(self) -> MultiMapping[str]:
        """The query string's parameters."""
        return self.request.query

    @property
    def cookies(self) -> Mapping[str, str]:
        """The handshake request's cookies."""
        return self.request.cookies

    @property
    def client(self) -> Address | None:
        """The peer's address, or ``None`` when the transport does not tell it."""
        transport = self.request.transport
        peer = transport.get_extra_info("peername") if transport is not None else None
        if isinstance(peer, tuple) and len(peer) >= 2:
            return Address(str(peer[0]), int(peer[1]))
        return None

    @property
    def app(self) -> web.Application:
        """The application that serves this connection."""
        return self.request.app

    @property
    def state(self) -> SimpleNamespace:
        """A namespace for whatever the application keeps per connection."""
        if self._state is None:
            self._state = SimpleNamespace()
        return self._state

    # Connection state ----------------------------------------------------------------------

    @property
    def accepted(self) -> bool:
        """Whether the handshake was accepted (it stays true after the close)."""
        return self.response is not None

    @property
    def closed(self) -> bool:
        """Whether the connection is closed, or was refused before the handshake."""
        return self._phase == _CLOSED

    @property
    def subprotocol(self) -> str | None:
        """The subprotocol agreed in the handshake, if any."""
        return self.response.ws_protocol if self.response is not None else None

    @property
    def close_code(self) -> int | None:
        """How the connection ended: the close code, or ``None`` while it is open.

        1006 (:attr:`CloseCode.ABNORMAL_CLOSURE`) means it dropped without a close frame.
        """
        return self._close_code

    @property
    def close_reason(self) -> str:
        """The reason sent with the close frame, if any."""
        return self._close_reason

    # Handshake ---------------------------------------------------------------------------

    async def accept(
        self,
        subprotocol: str | None = None,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
    ) -> None:
        """Complete the handshake, optionally choosing a subprotocol and adding headers."""
        if self._phase != _CONNECTING:
            raise WebSocketStateError(
                "accept() was already called" if self.accepted else "connection was refused"
            )
        options = self._options
        limits = options.policy.limits
        response = web.WebSocketResponse(
            protocols=(subprotocol,) if subprotocol else options.protocols,
            heartbeat=options.heartbeat,
            receive_timeout=options.receive_timeout or limits.idle_timeout,
            max_msg_size=options.max_msg_size,
            compress=options.compress,
            timeout=options.close_timeout,
            # The peer's close frame is answered by _answer_close(), which refuses to echo
            # the codes a peer must never send.
            autoclose=False,
            writer_limit=max(limits.write_buffer_limit // 4, 1024),
        )
        if headers is not None:
            response.headers.extend(headers.items() if isinstance(headers, Mapping) else headers)
        await response.prepare(self.request)
        self.response = response
        self._phase = _OPEN
        if self._registry is not None:
            self._registry.add(self)
        self._start_limits()

    def authenticated(self) -> None:
        """Tell the connection that the peer has authenticated, in time for ``auth_timeout``.

        With the route option ``auth_timeout``, a connection whose view has not called this
        within that many seconds of :meth:`accept` is closed with 1008.
        """
        timer = self._auth_timer
        if timer is not None:
            self._auth_timer = None
            timer.cancel()

    def _start_limits(self) -> None:
        limits = self._options.policy.limits
        loop = asyncio.get_running_loop()
        transport = self.request.transport
        if transport is not None:
            if limits.send_timeout is not None:
                self._send_guard = SendGuard(
                    transport, limits.write_buffer_limit, limits.send_timeout
                )
            else:
                transport.set_write_buffer_limits(high=limits.write_buffer_limit)
        if limits.rate_limit is not None:
            self._rate_limit = TokenBucket(limits.rate_limit, loop.time)
        if limits.auth_timeout is not None:
            self._auth_timer = loop.call_later(limits.auth_timeout, self._auth_deadline)

    def _auth_deadline(self) -> None:
        self._auth_timer = None
        if self._phase == _OPEN:
            _run_in_background(self._close_for_policy(*AUTH_TIMEOUT_CLOSE))

    async def _close_for_policy(self, code: int, reason: str) -> WebSocketDisconnect:
        """Close for a limit the peer broke; return the disconnect for the view to raise."""
        try:
            await self.close(code, reason)
        except (TimeoutError, ConnectionError):
            self._abort()
        return WebSocketDisconnect(code, reason)

    def reject(
        self,
        status: int = 403,
        reason: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> NoReturn:
        """Refuse the handshake with an HTTP error response; only before :meth:`accept`.

        It raises the matching :class:`aiohttp.web.HTTPException`, so nothing after it runs.
        """
        if self._phase != _CONNECTING:
            raise WebSocketStateError("reject() must be called before accept()")
        self._phase = _CLOSED
        raise http_error(status, reason, headers)

    # Receiving ---------------------------------------------------------------------------

    async def receive(self) -> Any:
        """Receive the next message as the :attr:`receive_type` says.

        Raises :class:`WebSocketDisconnect` once the connection is closed,
        :class:`UnsupportedData` for a frame of the other kind (text for bytes and the
        other way round) and :class:`InvalidData` for JSON that does not decode.
        """
        payload = await self._receive_payload(self._receive_frame)
        if self._receive_json:
            return self._decode_json(payload)
        return payload

    async def receive_text(self) -> str:
        """Receive the next message, which must be a text frame."""
        payload = await self._receive_payload(_TEXT)
        assert isinstance(payload, str)
        return payload

    async def receive_bytes(self) -> bytes:
        """Receive the next message, which must be a binary frame."""
        payload = await self._receive_payload(_BINARY)
        assert isinstance(payload, bytes)
        return payload

    async def receive_json(self) -> Any:
        """Receive the next message, a text frame of JSON, decoded."""
        return self._decode_json(await self._receive_payload(_TEXT))

    async def receive_message(self) -> str | bytes:
        """Receive the next message as it came: ``str`` for text, ``bytes`` for binary."""
        return await self._receive_payload(None)

    def __aiter__(self) -> WebSocket:
        return self

    async def __anext__(self) -> Any:
        """Yield received values until the peer closes with a caught close code."""
        try:
            return await self.receive()
        except WebSocketDisconnect as disconnect:
            if self._options.catches(disconnect.code):
                raise StopAsyncIteration from None
            raise

    async def _receive_payload(self, expected: WSMsgType | None) -> str | bytes:
        response = self._open_response()
        try:
            message = await response.receive()
        except TimeoutError:
            if self._options.policy.limits.idle_timeout is None:
                raise
            raise await self._close_for_policy(*IDLE_TIMEOUT_CLOSE) from None
        kind = message.type
        if kind is expected or (expected is None and (kind is _TEXT or kind is _BINARY)):
            if self._rate_limit is not None and not self._rate_limit.take():
                raise await self._close_for_policy(*RATE_LIMIT_CLOSE)
            return message.data  # type: ignore[no-any-return]
        if kind is _CLOSE:
            await self._answer_close(response, message.data, message.extra or "")
        raise self._receive_failure(message.type, message.data, message.extra, expected)

    async def _answer_close(self, response: web.WebSocketResponse, code: int, reason: str) -> None:
        """Answer the peer's close frame: echo its code, or fail with 1002 if it is invalid."""
        reply = peer_close_reply(code)
        if reply == CloseCode.PROTOCOL_ERROR:
            reason = f"invalid close code {code}"
            self._set_closed(reply, reason)
            message = reason.encode()
        else:
            self._set_closed(code or CloseCode.NO_STATUS_RECEIVED, reason)
            message = b""
        # The peer is likely to drop the connection now: do not wait to drain our writes.
        await response.close(code=reply, message=message, drain=False)

    def _receive_failure(
        self, kind: WSMsgType, data: Any, extra: Any, expected: WSMsgType | None
    ) -> Exception:
        if kind is _TEXT or kind is _BINARY:
            wanted = "text" if expected is _TEXT else "binary"
            return UnsupportedData(
                reason=f"expected a {wanted} message, got a {_FRAME_NAMES[kind]} one"
            )
        if kind is _CLOSE:
            # The peer's close frame; _answer_close() has answered it.
            self._set_closed(data or CloseCode.NO_STATUS_RECEIVED, extra or "")
        elif kind is WSMsgType.ERROR and isinstance(data, WebSocketError):
            # A protocol violation: aiohttp has closed with the matching code.
            self._set_closed(data.code, str(data.args[1] if len(data.args) > 1 else data))
        else:
            # CLOSING or CLOSED after our own close(), or a connection that dropped.
            self._set_closed(CloseCode.ABNORMAL_CLOSURE, "")
        return WebSocketDisconnect(
            self._close_code or CloseCode.ABNORMAL_CLOSURE, self._close_reason
        )

    def _decode_json(self, payload: str | bytes) -> Any:
        try:
            return self._options.loads(payload)  # type: ignore[arg-type]
        except ValueError as error:
            raise InvalidData(reason="invalid JSON") from error

    # Sending -----------------------------------------------------------------------------

    async def send(self, value: Any) -> None:
        """Send ``value`` as the :attr:`send_type` says."""
        send_type = self._send_type
        if send_type == "text":
            await self.send_text(value)
        elif send_type == "json":
            await self.send_json(value)
        else:
            await self.send_bytes(value)

    async def send_text(self, text: str) -> None:
        """Send a text frame."""
        if not isinstance(text, str):
            raise TypeError(f"send_text() takes a str, got {type(text).__name__}; {_HINT}")
        await self._send_frame(text.encode(), _TEXT)

    async def send_bytes(self, data: bytes | bytearray | memoryview) -> None:
        """Send a binary frame."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"send_bytes() takes bytes, got {type(data).__name__}; {_HINT}")
        await self._send_frame(data, _BINARY)

    async def send_json(self, value: Any) -> None:
        """Send ``value`` encoded as JSON in a text frame."""
        encoded = self._options.dumps(value)
        await self._send_frame(encoded.encode() if isinstance(encoded, str) else encoded, _TEXT)

    async def _send_frame(self, payload: bytes | bytearray | memoryview, kind: WSMsgType) -> None:
        response = self._open_response()
        guard = self._send_guard
        try:
            if guard is None or guard.fits(len(payload)):
                await response.send_frame(payload, kind)  # type: ignore[arg-type]
            elif not await guard.send(response.send_frame(payload, kind)):  # type: ignore[arg-type]
                code, reason = SEND_TIMEOUT_CLOSE
                self._set_closed(code, reason)
                self._closed_here = True
                guard.drop(code, _encode_reason(reason), self._options.close_timeout)
                raise WebSocketDisconnect(code, reason)
        except ConnectionResetError:
            self._set_closed(CloseCode.ABNORMAL_CLOSURE, "")
            raise WebSocketDisconnect(CloseCode.ABNORMAL_CLOSURE) from None

    # Closing -----------------------------------------------------------------------------

    async def close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """Close the connection with ``code`` and ``reason``; refuse it before :meth:`accept`.

        Closing a closed connection does nothing. Before the handshake, the client gets
        HTTP 403.
        """
        if self._phase == _CLOSED:
            return
        if not is_sendable_close_code(code):
            raise ValueError(f"close code {code!r} cannot be sent in a close frame")
        self._set_closed(code, reason)
        self._closed_here = True
        if self.response is not None:
            await self.response.close(code=code, message=_encode_reason(reason))

    async def __aenter__(self) -> WebSocket:
        if self._phase == _CONNECTING:
            await self.accept()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        # On an exception, leave the close code to the view runner (1011, 1003, ...).
        if exc is None:
            await self.close()

    def _open_response(self) -> web.WebSocketResponse:
        if self._phase == _OPEN:
            assert self.response is not None
            return self.response
        if self._phase == _CONNECTING:
            raise WebSocketStateError("call accept() first")
        raise WebSocketDisconnect(
            self._close_code or CloseCode.ABNORMAL_CLOSURE, self._close_reason
        )

    def _set_closed(self, code: int, reason: str) -> None:
        if self._phase != _CLOSED:
            self._phase = _CLOSED
            self._close_code = code
            self._close_reason = reason
            # Release the connection now rather than when the deadline would have passed.
            self.authenticated()

    def _abort(self) -> None:
        """Mark the connection as dropped (1006) and drop the transport."""
        if self._phase != _CLOSED:
            self._set_closed(CloseCode.ABNORMAL_CLOSURE, "")
            transport = self.request.transport
            if transport is not None:
                transport.close()


_HINT = "set the route's value_type or use the matching send_*() method"

# Strong references to the closes that limits start from timer callbacks.
_background_closes: set[asyncio.Task[object]] = set()


def _run_in_background(closing: Coroutine[object, None, object]) -> None:
    task = asyncio.ensure_future(closing)
    _background_closes.add(task)
    task.add_done_callback(_background_closes.discard)


def _encode_reason(reason: str) -> bytes:
    encoded = reason.encode()
    if len(encoded) <= _MAX_REASON_BYTES:
        return encoded
    return encoded[:_MAX_REASON_BYTES].decode(errors="ignore").encode()
