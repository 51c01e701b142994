"""The :class:`WebSocket`: one connection, with Bocadillo's friendly API over aiohttp's."""

from __future__ import annotations

import asyncio
import enum
import functools
import itertools
import logging
import time
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Mapping
from types import SimpleNamespace, TracebackType
from typing import Any, NamedTuple, NoReturn

from aiohttp import WebSocketError, WSMessage, WSMsgType, hdrs, web
from multidict import CIMultiDictProxy, MultiMapping
from yarl import URL

from .close_codes import CloseCode, is_sendable_close_code
from .exceptions import (
    InvalidData,
    UnsupportedData,
    WebSocketDisconnect,
    WebSocketStateError,
)
from .group_hub import GROUP_HUB_KEY, GroupHub, Message
from .keepalive import can_watch, stop_watching, watch
from .limits import (
    AUTH_TIMEOUT_CLOSE,
    IDLE_TIMEOUT_CLOSE,
    RATE_LIMIT_CLOSE,
    SEND_TIMEOUT_CLOSE,
    SendGuard,
    TokenBucket,
    drop_transport,
    room_for,
    send_guard,
)
from .observers import OBSERVER_KEY, MessageCounts, route_of
from .options import RouteOptions, ValueType, check_value_type
from .params import NO_PARAMS
from .policy import peer_close_reply
from .refusals import http_error
from .registry import CONNECTIONS_KEY
from .request_keys import (
    HIDDEN_SUBPROTOCOLS_KEY,
    PRINCIPAL_KEY,
    RECEIVE_FILTER_KEY,
    USER_ID_KEY,
    app_value,
    app_values,
    request_value,
)
from .serialization import MessageCodec

__all__ = ["Address", "ReceiveFilter", "WebSocket", "WebSocketState"]

logger = logging.getLogger("aioendpoints")

# Connection phases, as in the WebSocket API of browsers; plain ints, since the
# per-message paths compare them. WebSocketState names them for users.
_CONNECTING, _OPEN, _CLOSED = 0, 1, 2

_TEXT = WSMsgType.TEXT
_BINARY = WSMsgType.BINARY
_CLOSE = WSMsgType.CLOSE
_PING = WSMsgType.PING
_PONG = WSMsgType.PONG
_FRAME_NAMES = {_TEXT: "text", _BINARY: "binary"}
_MAX_REASON_BYTES = 123  # RFC 6455 §5.5: control frame payloads are at most 125 bytes.


class WebSocketState(enum.IntEnum):
    """Where a connection is in its life, as :attr:`WebSocket.connection_state` tells it."""

    #: The handshake is not accepted yet.
    CONNECTING = _CONNECTING
    #: Accepted: messages go both ways.
    OPEN = _OPEN
    #: Closed, by either side or by a dropped connection, or refused before the handshake.
    CLOSED = _CLOSED


#: Called once by :meth:`WebSocket.accept` with the connection and aiohttp's receive; what
#: it returns is the receive that :meth:`WebSocket.receive` and the others call from then on.
ReceiveFilter = Callable[
    ["WebSocket", Callable[[], Awaitable[WSMessage]]], Callable[[], Awaitable[WSMessage]]
]


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
        "_counts",
        "_idle_deadline",
        "_number",
        "_opened_at",
        "_options",
        "_phase",
        "_rate_limit",
        "_receive_frame",
        "_receive_from",
        "_receive_json",
        "_receive_message",
        "_send_frame",
        "_send_guard",
        "_send_kind",
        "_send_to",
        "_state",
        "_transport",
        "path_params",
        "request",
        "response",
        "user",
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
            (dict(request.match_info) if request.match_info else NO_PARAMS)
            if path_params is None
            else path_params
        )
        self._options = options or RouteOptions()
        self._phase = _CONNECTING
        self._close_code: int | None = None
        self._close_reason = ""
        self._state: SimpleNamespace | None = None
        # The id's number: an int takes less than the str of its hex digits.
        self._number = _next_id()
        #: Whom the connection belongs to: the principal's id when the route authenticates
        #: (see :mod:`aioendpoints.auth`), else as the application tags it
        #: (``ws.user = "alice"``); :func:`aioendpoints.send_to_user` and
        #: :func:`aioendpoints.disconnect` find it by this.
        self.user: str | None = request_value(request, USER_ID_KEY)
        # What the per-message paths call, chosen once in accept(): a function and what it
        # is called on (the response's own methods, or a limit's), rather than a bound
        # method, which would be one more object per connection.
        self._receive_message: Callable[[Any], Awaitable[WSMessage]] = _not_accepted
        self._receive_from: Any = None
        self._send_frame: Callable[[Any, _Payload, WSMsgType], Awaitable[None]] = _not_accepted
        self._send_to: Any = None
        # Limits that cost something per message are set up by accept(), and only when
        # the route configures them.
        self._rate_limit: TokenBucket | None = None
        self._send_guard: SendGuard | None = None
        # The transport the send guard watches (the request's, kept for the per-send check).
        self._transport: asyncio.Transport | None = None
        self._auth_timer: asyncio.TimerHandle | None = None
        # When the pending receive() gives up for idle_timeout; control frames do not move it.
        self._idle_deadline: float | None = None
        #: Whether this side closed first, so the view's WebSocketDisconnect is expected.
        self._closed_here = False
        self._opened_at: float | None = None
        # Counted only when a feature asks (count_messages()): None, the per-message paths
        # then test one slot and count nothing.
        self._counts: MessageCounts | None = None
        # The route's value types, checked when it was declared: set without the setters'
        # checks, from the same tables.
        self._receive_frame, self._receive_json = _RECEIVE_FLAGS[self._options.receive_type]
        self._send_kind = _SEND_KINDS[self._options.send_type]

    @property
    def id(self) -> str:
        """A short id, unique in this process, that log records about the connection carry."""
        return format(self._number, "x")

    def __repr__(self) -> str:
        phase = ("connecting", "open", "closed")[self._phase]
        return f"<WebSocket {self.id} {self.request.path} {phase}>"

    # Value types -------------------------------------------------------------------------

    @property
    def receive_type(self) -> ValueType:
        """What :meth:`receive` returns: ``"text"``, ``"bytes"`` or ``"json"``."""
        if self._receive_json:
            return "json"
        return "bytes" if self._receive_frame is _BINARY else "text"

    @receive_type.setter
    def receive_type(self, value: ValueType) -> None:
        check_value_type(value, "receive_type")
        # Only what receive() tests per message is kept (the name is derived from it): one
        # slot less per connection, and no lookup per message.
        self._receive_frame, self._receive_json = _RECEIVE_FLAGS[value]

    @property
    def send_type(self) -> ValueType:
        """What :meth:`send` takes: ``"text"``, ``"bytes"`` or ``"json"``."""
        kind = self._send_kind
        return "json" if kind is None else "bytes" if kind is _BINARY else "text"

    @send_type.setter
    def send_type(self, value: ValueType) -> None:
        check_value_type(value, "send_type")
        # Chosen once here so that send() does not compare strings per message.
        self._send_kind = _SEND_KINDS[value]

    @property
    def value_type(self) -> ValueType | None:
        """The value type of both directions, or ``None`` when they differ; settable."""
        receive_type = self.receive_type
        return receive_type if receive_type == self.send_type else None

    @value_type.setter
    def value_type(self, value: ValueType) -> None:
        self.receive_type = value
        self.send_type = value

    @property
    def message_codec(self) -> MessageCodec | None:
        """The route's typed messages (see :mod:`aioendpoints.messages`), or ``None``."""
        return self._options.codec

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
    def groups(self) -> tuple[str, ...]:
        """The groups this connection has joined."""
        hub = app_value(self.request, GROUP_HUB_KEY)
        return () if hub is None else hub.groups_of(self)

    @property
    def route(self) -> str:
        """The path pattern of the route serving this connection, such as ``/rooms/{room}``."""
        return route_of(self.request)

    @property
    def app(self) -> web.Application:
        """The application that serves this connection."""
        return self.request.app

    @property
    def principal(self) -> Any:
        """Who the peer is: what the route's ``authenticate`` check returned, else ``None``.

        After a refresh (see :mod:`aioendpoints.auth`) it is the refreshed principal.
        """
        return self.request.get(PRINCIPAL_KEY)

    @property
    def state(self) -> SimpleNamespace:
        """A namespace for whatever the application keeps per connection."""
        if self._state is None:
            self._state = SimpleNamespace()
        return self._state

    # Connection state ----------------------------------------------------------------------

    @property
    def connection_state(self) -> WebSocketState:
        """Where the connection is: connecting, open or closed (see :class:`WebSocketState`)."""
        return WebSocketState(self._phase)

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
    def subprotocols(self) -> tuple[str, ...]:
        """The subprotocols the client offered, in its order of preference.

        Offered subprotocols that carry a credential (see
        :class:`~aioendpoints.auth.SubprotocolToken`) are left out.
        """
        offered = self.request.headers.getall(hdrs.SEC_WEBSOCKET_PROTOCOL, ())
        hidden: tuple[str, ...] = self.request.get(HIDDEN_SUBPROTOCOLS_KEY, ())
        return tuple(
            name
            for value in offered
            for part in value.split(",")
            if (name := part.strip()) and not name.startswith(hidden)
        )

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

    @property
    def opened_at(self) -> float | None:
        """When the handshake was accepted, in seconds since the epoch; ``None`` before."""
        return self._opened_at

    # Handshake ---------------------------------------------------------------------------

    async def accept(
        self,
        subprotocol: str | None = None,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
    ) -> None:
        """Complete the handshake, optionally choosing a subprotocol and adding headers.

        ``subprotocol`` must be one the client offered (see :attr:`subprotocols`), else
        :class:`ValueError`.
        """
        if self._phase != _CONNECTING:
            raise WebSocketStateError(
                "accept() was already called" if self.accepted else "connection was refused"
            )
        if subprotocol is not None and subprotocol not in self.subprotocols:
            raise ValueError(
                f"accept(subprotocol={subprotocol!r}): the client did not offer it; it offered "
                f"{list(self.subprotocols)!r}: choose one of ws.subprotocols, or accept() "
                "without a subprotocol"
            )
        transport = self.request.transport
        if transport is None or transport.is_closing():
            # The peer left while the view made up its mind: an ordinary end, not a fault.
            raise self._dropped()
        options = self._options
        heartbeat = options.heartbeat
        # Our keepalive, where it can watch the transport; aiohttp's heartbeat otherwise.
        keepalive = heartbeat is not None and can_watch(self.request)
        response = web.WebSocketResponse(
            protocols=(subprotocol,) if subprotocol else options.protocols,
            heartbeat=None if keepalive else heartbeat,
            receive_timeout=options.receive_timeout,
            max_msg_size=options.max_msg_size,
            compress=options.compress,
            timeout=options.close_timeout,
            # The peer's close frame is answered by _answer_close(), which refuses to echo
            # the codes a peer must never send.
            autoclose=False,
            # Pings are answered by _pong(), whose write is bounded: aiohttp's waits for the
            # reader forever, inside receive(), when a peer floods pings and reads nothing.
            autoping=False,
            writer_limit=_writer_limit(options.write_buffer_limit),
        )
        if headers is not None:
            response.headers.extend(headers.items() if isinstance(headers, Mapping) else headers)
        try:
            await response.prepare(self.request)
        except ConnectionError:
            raise self._dropped() from None
        self.response = response
        self._phase = _OPEN
        self._opened_at = time.time()
        if keepalive:
            assert heartbeat is not None
            watch(self.request, heartbeat)
        # Where the connection is registered, and who hears of it: app-wide parts, looked
        # up now rather than kept by each connection.
        value_of = app_values(self.request)
        registry = value_of(CONNECTIONS_KEY)
        if registry is not None:
            registry.add(self)
        if logger.isEnabledFor(logging.DEBUG):
            # Guarded: request.path caches itself in the request, 0.2 KiB a connection.
            logger.debug("WebSocket %s opened from %s", self.request.path, self.client)
        self._start_limits()
        # The per-message paths call the response's own methods, unless a limit that the
        # route configures has to see each message.
        if self._rate_limit is not None or options.idle_timeout is not None:
            self._receive_message, self._receive_from = WebSocket._limited_receive, self
        else:
            self._receive_message, self._receive_from = web.WebSocketResponse.receive, response
        if self._send_guard is not None:
            self._send_frame, self._send_to = WebSocket._guarded_send_frame, self
        else:
            self._send_frame = web.WebSocketResponse.send_frame  # type: ignore[assignment]
            self._send_to = response
        receive_filter: ReceiveFilter | None = request_value(self.request, RECEIVE_FILTER_KEY)
        if receive_filter is not None:
            self._receive_through(receive_filter(self, self._bound_receive()))
        observer = value_of(OBSERVER_KEY)
        if observer is not None:
            receive, send = self._bound_receive(), self._bound_send()
            observed_receive, observed_send = observer.opened(self, receive, send)
            if observed_receive is not receive:
                self._receive_through(observed_receive)
            if observed_send is not send:
                self._send_frame, self._send_to = _call_send, observed_send

    def _bound_receive(self) -> Callable[[], Awaitable[WSMessage]]:
        """What the per-message paths receive with, as one callable, for a feature to wrap."""
        if self._receive_message is _call_receive:
            return self._receive_from  # type: ignore[no-any-return]
        return functools.partial(self._receive_message, self._receive_from)

    def _bound_send(self) -> Callable[[_Payload, WSMsgType], Awaitable[None]]:
        """What the per-message paths send with, as one callable, for a feature to wrap."""
        return functools.partial(self._send_frame, self._send_to)

    def _receive_through(self, receive: Callable[[], Awaitable[WSMessage]]) -> None:
        self._receive_message, self._receive_from = _call_receive, receive

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
        options = self._options
        loop = asyncio.get_running_loop()
        transport = self.request.transport
        if transport is not None:
            if options.send_timeout is not None:
                guard = self._send_guard = send_guard(
                    options.write_buffer_limit, options.send_timeout
                )
                guard.watch(transport)
                self._transport = transport
            else:
                transport.set_write_buffer_limits(high=options.write_buffer_limit)
        if options.rate_limit is not None:
            self._rate_limit = TokenBucket(options.rate_limit, loop.time)
        if options.auth_timeout is not None:
            self._auth_timer = loop.call_later(options.auth_timeout, self._auth_deadline)

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

    async def _limited_receive(self) -> WSMessage:
        """aiohttp's receive(), with the idle timeout and the rate limit of the route.

        The idle timeout runs from the start of a receive*() call to the next text or binary
        message: pings and pongs received meanwhile do not restart it (liveness is the
        heartbeat's job).
        """
        response = self.response
        assert response is not None
        idle_timeout = self._options.idle_timeout
        if idle_timeout is None:
            message = await response.receive()
        else:
            now = asyncio.get_running_loop().time()
            deadline = self._idle_deadline
            if deadline is None:
                deadline = self._idle_deadline = now + idle_timeout
            try:
                # aiohttp reads a timeout of 0 as none at all.
                message = await response.receive(max(deadline - now, 0.001))
            except TimeoutError:
                raise await self._close_for_policy(*IDLE_TIMEOUT_CLOSE) from None
        kind = message.type
        if kind is _TEXT or kind is _BINARY:
            self._idle_deadline = None
            rate_limit = self._rate_limit
            if rate_limit is not None and not rate_limit.take():
                raise await self._close_for_policy(*RATE_LIMIT_CLOSE)
        return message

    def _guarded_send_frame(self, payload: _Payload, kind: WSMsgType) -> Awaitable[None]:
        """aiohttp's send_frame(), bounded by the send guard: a slow reader is closed.

        A send that fits in the buffer returns aiohttp's own coroutine, so the common case
        costs one size check and no extra coroutine per message.
        """
        guard = self._send_guard
        assert self.response is not None
        assert guard is not None
        assert self._transport is not None
        sending = self.response.send_frame(payload, kind)  # type: ignore[arg-type]
        if guard.fits(self._transport, len(payload)):
            return sending
        return self._send_or_drop(guard, sending)

    async def _send_or_drop(self, guard: SendGuard, sending: Awaitable[None]) -> None:
        if not await guard.send(sending):
            raise self._drop_slow_reader()

    def _send_deadline(self) -> float:
        """Seconds a write may wait for the reader: ``send_timeout``, else ``close_timeout``."""
        return self._options.send_timeout or self._options.close_timeout

    def _drop_slow_reader(self) -> WebSocketDisconnect:
        """Give up on a peer that does not read: queue a close frame, then drop it.

        Returns the disconnect for the caller to raise.
        """
        code, reason = SEND_TIMEOUT_CLOSE
        self._set_closed(code, reason)
        self._closed_here = True
        transport = self.request.transport
        if transport is not None:
            drop_transport(transport, code, _encode_reason(reason), self._options.close_timeout)
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

    # The receive*() methods below repeat the same few lines instead of sharing a helper:
    # on this per-message path an extra coroutine call costs more than the rest of our layer.
    # So do their message counts (see count_messages()): a call per message would cost twice
    # as much as the counting itself.

    async def receive(
        self,
        timeout: float | None = None,  # noqa: ASYNC109 - as in aiohttp
    ) -> Any:
        """Receive the next message as the :attr:`receive_type` says.

        Raises :class:`WebSocketDisconnect` once the connection is closed,
        :class:`UnsupportedData` for a frame of the other kind (text for bytes and the
        other way round) and :class:`InvalidData` for JSON that does not decode. With a
        ``timeout``, as in aiohttp, :class:`TimeoutError` when no message came within that
        many seconds; the connection stays open. The ``receive_*()`` methods take it too.
        """
        if self._phase != _OPEN:
            raise self._not_open()
        message = await (
            self._receive_message(self._receive_from)
            if timeout is None
            else self._receive_within(timeout)
        )
        if message.type is not self._receive_frame:
            message = await self._next_data(message, self._receive_frame, timeout)
        data = message.data
        if self._counts is not None:
            self._counts.messages_received += 1
            self._counts.bytes_received += (
                len(data)
                if self._receive_frame is _BINARY or data.isascii()
                else len(data.encode())
            )
        if self._receive_json:
            try:
                return self._options.loads(data)
            except ValueError as error:
                if self._options.codec is not None:
                    return await self._receive_after_invalid(data, error)
                raise InvalidData(reason="invalid JSON") from error
        return data

    async def receive_text(
        self,
        timeout: float | None = None,  # noqa: ASYNC109 - as in aiohttp
    ) -> str:
        """Receive the next message, which must be a text frame."""
        if self._phase != _OPEN:
            raise self._not_open()
        message = await (
            self._receive_message(self._receive_from)
            if timeout is None
            else self._receive_within(timeout)
        )
        if message.type is not _TEXT:
            message = await self._next_data(message, _TEXT, timeout)
        data: str = message.data
        if self._counts is not None:
            self._counts.messages_received += 1
            self._counts.bytes_received += len(data) if data.isascii() else len(data.encode())
        return data

    async def receive_bytes(
        self,
        timeout: float | None = None,  # noqa: ASYNC109 - as in aiohttp
    ) -> bytes:
        """Receive the next message, which must be a binary frame."""
        if self._phase != _OPEN:
            raise self._not_open()
        message = await (
            self._receive_message(self._receive_from)
            if timeout is None
            else self._receive_within(timeout)
        )
        if message.type is not _BINARY:
            message = await self._next_data(message, _BINARY, timeout)
        data: bytes = message.data
        if self._counts is not None:
            self._counts.messages_received += 1
            self._counts.bytes_received += len(data)
        return data

    async def receive_json(
        self,
        timeout: float | None = None,  # noqa: ASYNC109 - as in aiohttp
    ) -> Any:
        """Receive the next message, a text frame of JSON, decoded."""
        if self._phase != _OPEN:
            raise self._not_open()
        message = await (
            self._receive_message(self._receive_from)
            if timeout is None
            else self._receive_within(timeout)
        )
        if message.type is not _TEXT:
            message = await self._next_data(message, _TEXT, timeout)
        data = message.data
        if self._counts is not None:
            self._counts.messages_received += 1
            self._counts.bytes_received += len(data) if data.isascii() else len(data.encode())
        try:
            return self._options.loads(data)
        except ValueError as error:
            if self._options.codec is not None:
                return await self._receive_after_invalid(data, error)
            raise InvalidData(reason="invalid JSON") from error

    async def _receive_within(self, timeout: float) -> WSMessage:  # noqa: ASYNC109
        """The next message, or :class:`TimeoutError` after ``timeout`` seconds."""
        try:
            async with asyncio.timeout(timeout):
                return await self._receive_message(self._receive_from)
        except TimeoutError:
            raise TimeoutError(f"no message within {timeout:g} s") from None

    async def iter_text(self) -> AsyncIterator[str]:
        """Yield text messages until the peer closes, as ``async for`` does (Starlette's)."""
        try:
            while True:
                yield await self.receive_text()
        except WebSocketDisconnect as disconnect:
            self._raise_unless_caught(disconnect)

    async def iter_bytes(self) -> AsyncIterator[bytes]:
        """Yield binary messages until the peer closes, as ``async for`` does."""
        try:
            while True:
                yield await self.receive_bytes()
        except WebSocketDisconnect as disconnect:
            self._raise_unless_caught(disconnect)

    async def iter_json(self) -> AsyncIterator[Any]:
        """Yield decoded JSON messages until the peer closes, as ``async for`` does."""
        try:
            while True:
                yield await self.receive_json()
        except WebSocketDisconnect as disconnect:
            self._raise_unless_caught(disconnect)

    def _raise_unless_caught(self, disconnect: WebSocketDisconnect) -> None:
        if not self._options.catches(disconnect.code):
            raise disconnect

    def decode_json(self, message: str) -> Any:
        """Decode ``message`` with the route's JSON ``loads``.

        Raises :class:`InvalidData` (close code 1007) when it is not JSON.
        """
        try:
            return self._options.loads(message)
        except ValueError as error:
            raise InvalidData(reason="invalid JSON") from error

    async def receive_message(
        self,
        timeout: float | None = None,  # noqa: ASYNC109 - as in aiohttp
    ) -> str | bytes:
        """Receive the next message as it came: ``str`` for text, ``bytes`` for binary."""
        if self._phase != _OPEN:
            raise self._not_open()
        message = await (
            self._receive_message(self._receive_from)
            if timeout is None
            else self._receive_within(timeout)
        )
        kind = message.type
        if kind is not _TEXT and kind is not _BINARY:
            message = await self._next_data(message, None)
        data = message.data
        if self._counts is not None:
            self._counts.messages_received += 1
            self._counts.bytes_received += (
                len(data) if type(data) is bytes or data.isascii() else len(data.encode())
            )
        return data  # type: ignore[no-any-return]

    def __aiter__(self) -> WebSocket:
        return self

    async def __anext__(self) -> Any:
        """Yield received values until the peer closes with a caught close code."""
        # receive(), inlined: see the note above receive().
        if self._phase != _OPEN:
            raise self._stop_or_raise(self._not_open())
        message = await self._receive_message(self._receive_from)
        if message.type is not self._receive_frame:
            try:
                message = await self._next_data(message, self._receive_frame)
            except WebSocketDisconnect as disconnect:
                raise self._stop_or_raise(disconnect) from None
        data = message.data
        if self._counts is not None:
            self._counts.messages_received += 1
            self._counts.bytes_received += (
                len(data)
                if self._receive_frame is _BINARY or data.isascii()
                else len(data.encode())
            )
        if self._receive_json:
            try:
                return self._options.loads(data)
            except ValueError as error:
                if self._options.codec is not None:
                    try:
                        return await self._receive_after_invalid(data, error)
                    except WebSocketDisconnect as disconnect:
                        raise self._stop_or_raise(disconnect) from None
                raise InvalidData(reason="invalid JSON") from error
        return data

    async def _next_data(
        self,
        message: WSMessage,
        expected: WSMsgType | None,
        timeout: float | None = None,  # noqa: ASYNC109 - the receive call's
    ) -> WSMessage:
        """The next message of the ``expected`` kind (text or binary for ``None``).

        Called with a message that was not: answers pings and skips pongs until a data
        frame comes, and raises what anything else means (see :meth:`_receive_failure`).
        """
        while True:
            kind = message.type
            if kind is _PING:
                await self._pong(message.data)
            elif kind is not _PONG:
                if expected is None and (kind is _TEXT or kind is _BINARY):
                    return message
                raise await self._receive_failure(message, expected)
            message = await (
                self._receive_message(self._receive_from)
                if timeout is None
                else self._receive_within(timeout)
            )
            if message.type is expected:
                return message

    async def _pong(self, payload: bytes) -> None:
        """Answer a ping, within the time a send may take; a peer that reads nothing is dropped."""
        response = self.response
        assert response is not None
        try:
            async with asyncio.timeout(self._send_deadline()):
                await response.pong(payload)
        except TimeoutError:
            raise self._drop_slow_reader() from None
        except ConnectionError:
            raise self._dropped() from None

    async def _receive_after_invalid(self, data: Any, error: ValueError) -> Any:
        """Answer an invalid typed message (or close with 1007), then receive the next one.

        An invalid message is the client's mistake, not a fault of the server: it is
        logged at debug level, without a traceback.
        """
        codec = self._options.codec
        assert codec is not None
        while True:
            reply, description = codec.invalid(data, error)
            logger.debug("Invalid message on %r: %s", self, description)
            if codec.close_invalid:
                raise InvalidData(reason=description) from None
            await self.send_json(reply)
            message = await self._receive_message(self._receive_from)
            if message.type is not _TEXT:
                message = await self._next_data(message, _TEXT)
            data = message.data
            if self._counts is not None:
                self._counts.messages_received += 1
                self._counts.bytes_received += len(data) if data.isascii() else len(data.encode())
            try:
                return self._options.loads(data)
            except ValueError as next_error:
                error = next_error

    async def _answer_close(self, code: int, reason: str) -> None:
        """Answer the peer's close frame: echo its code and reason, or fail with 1002."""
        reply = peer_close_reply(code)
        if code == 0:  # a close frame without a code: answered with 1000
            self._set_closed(CloseCode.NO_STATUS_RECEIVED, reason)
            message = b""
        elif reply == code:
            self._set_closed(code, reason)
            message = _encode_reason(reason)
        else:
            reason = f"invalid close code {code}"
            self._set_closed(reply, reason)
            message = reason.encode()
        # The peer is likely to drop the connection now: do not wait to drain our writes.
        await self._close_response(reply, message, drain=False)

    def _stop_or_raise(self, error: Exception) -> Exception:
        if isinstance(error, WebSocketDisconnect) and self._options.catches(error.code):
            return StopAsyncIteration()
        return error

    # For the view runner and the features: a small internal API ----------------------

    def check_open(self) -> None:
        """Raise unless the connection is accepted and open.

        :class:`WebSocketStateError` before :meth:`accept`, :class:`WebSocketDisconnect`
        with the close code once closed.

        :meta private:
        """
        if self._phase != _OPEN:
            raise self._not_open()

    @property
    def options(self) -> RouteOptions:
        """The options of the route serving this connection.

        :meta private:
        """
        return self._options

    @property
    def closed_here(self) -> bool:
        """Whether this side closed first (``close()``, a limit, a shutdown).

        :meta private:
        """
        return self._closed_here

    def count_messages(self) -> MessageCounts:
        """Count this connection's messages and bytes from now on; return the counts.

        :meta private:
        """
        if self._counts is None:
            self._counts = MessageCounts()
        return self._counts

    @property
    def message_counts(self) -> MessageCounts | None:
        """The counts started by :meth:`count_messages`, else ``None``.

        :meta private:
        """
        return self._counts

    def refused(self, code: int, reason: str) -> None:
        """Record that the handshake was refused: closed, with ``code`` and ``reason``.

        :meta private:
        """
        if self._phase == _CONNECTING:
            self._set_closed(code, reason)

    def drop(self) -> None:
        """Drop the connection without a close frame: 1006, unless it has a close code.

        :meta private:
        """
        self._abort()

    def _not_open(self) -> Exception:
        if self._phase == _CONNECTING:
            return WebSocketStateError("call accept() first")
        return WebSocketDisconnect(
            self._close_code or CloseCode.ABNORMAL_CLOSURE, self._close_reason
        )

    async def _receive_failure(self, message: WSMessage, expected: WSMsgType | None) -> Exception:
        """What receiving ``message`` instead of a ``expected`` frame raises; answers a close."""
        kind, data, extra = message.type, message.data, message.extra
        if kind is _TEXT or kind is _BINARY:
            wanted = "text" if expected is _TEXT else "binary"
            return UnsupportedData(
                reason=f"expected a {wanted} message, got a {_FRAME_NAMES[kind]} one"
            )
        if kind is _CLOSE:
            await self._answer_close(data, extra or "")
        elif kind is WSMsgType.ERROR and isinstance(data, WebSocketError):
            # A protocol violation: aiohttp has closed with the matching code.
            self._set_closed(data.code, str(data.args[1] if len(data.args) > 1 else data))
        else:
            # CLOSING or CLOSED after our own close(), or a connection that dropped.
            self._set_closed(CloseCode.ABNORMAL_CLOSURE, "")
        return WebSocketDisconnect(
            self._close_code or CloseCode.ABNORMAL_CLOSURE, self._close_reason
        )

    # Sending -----------------------------------------------------------------------------

    # As on the receiving side, the send*() methods repeat a few lines rather than share a
    # helper coroutine, which would cost a call per message.

    async def send(self, value: Any) -> None:
        """Send ``value`` as the :attr:`send_type` says."""
        kind = self._send_kind
        payload: _Payload
        if kind is _TEXT:
            if not isinstance(value, str):
                raise TypeError(_send_type_error("a str", "text", value))
            payload = value.encode()
        elif kind is _BINARY:
            if not isinstance(value, _BYTES_TYPES):
                raise TypeError(_send_type_error("bytes", "bytes", value))
            payload = value
        else:
            encoded = self._options.dumps(value)
            payload = encoded.encode() if isinstance(encoded, str) else encoded
            kind = _TEXT
        if self._phase != _OPEN:
            raise self._not_open()
        counts = self._counts
        if counts is not None:
            counts.messages_sent += 1
            counts.bytes_sent += len(payload)
        try:
            await self._send_frame(self._send_to, payload, kind)
        except ConnectionError:
            raise self._dropped() from None

    async def send_text(self, text: str) -> None:
        """Send a text frame."""
        if not isinstance(text, str):
            raise TypeError(f"send_text() takes a str, got {type(text).__name__}; {_HINT}")
        if self._phase != _OPEN:
            raise self._not_open()
        payload = text.encode()
        counts = self._counts
        if counts is not None:
            counts.messages_sent += 1
            counts.bytes_sent += len(payload)
        try:
            await self._send_frame(self._send_to, payload, _TEXT)
        except ConnectionError:
            raise self._dropped() from None

    async def send_bytes(self, data: bytes | bytearray | memoryview) -> None:
        """Send a binary frame."""
        if not isinstance(data, _BYTES_TYPES):
            raise TypeError(f"send_bytes() takes bytes, got {type(data).__name__}; {_HINT}")
        if self._phase != _OPEN:
            raise self._not_open()
        counts = self._counts
        if counts is not None:
            counts.messages_sent += 1
            counts.bytes_sent += len(data)
        try:
            await self._send_frame(self._send_to, data, _BINARY)
        except ConnectionError:
            raise self._dropped() from None

    async def send_json(self, value: Any) -> None:
        """Send ``value`` encoded as JSON in a text frame."""
        encoded = self._options.dumps(value)
        if self._phase != _OPEN:
            raise self._not_open()
        # bytes from orjson go out as they are: no decode and encode again.
        payload = encoded.encode() if isinstance(encoded, str) else encoded
        counts = self._counts
        if counts is not None:
            counts.messages_sent += 1
            counts.bytes_sent += len(payload)
        try:
            await self._send_frame(self._send_to, payload, _TEXT)
        except ConnectionError:
            raise self._dropped() from None

    def _dropped(self) -> WebSocketDisconnect:
        self._set_closed(CloseCode.ABNORMAL_CLOSURE, "")
        return WebSocketDisconnect(CloseCode.ABNORMAL_CLOSURE)

    # Groups ------------------------------------------------------------------------------

    async def join(
        self,
        group: str,
        *,
        since: Any = None,
        presence: Mapping[str, Any] | None = None,
        presence_events: bool = False,
    ) -> Any:
        """Join ``group``: from now on, messages published to it reach this connection.

        The connection leaves all its groups when it ends, however it ends. For a group
        with history, return a :class:`~aioendpoints.Recovery`: with ``since`` (a
        :class:`~aioendpoints.Position` or its ``str()``) every kept message after it is
        sent first, then the live ones, none twice and none missing, and ``recovered``
        says whether that was all of them. For other groups, return ``None``.

        With ``presence`` (a JSON-serialisable mapping) the connection is listed by
        :func:`aioendpoints.presence` until it leaves the group or ends; with
        ``presence_events=True`` it receives a JSON frame each time a member with
        presence joins or leaves (see :doc:`/topics/history`).
        """
        return await self._group_hub().join(
            self, group, since=since, presence=presence, presence_events=presence_events
        )

    async def leave(self, group: str) -> None:
        """Leave ``group``; leaving a group this connection is not in does nothing."""
        await self._group_hub().leave(self, group)

    async def publish(
        self,
        group: str,
        message: Message,
        *,
        exclude: WebSocket | None = None,
        exclude_self: bool | None = None,
    ) -> Any:
        """Send ``message`` to every member of ``group``, in every process.

        ``dict``/``list`` go as JSON text, ``str`` as text, bytes as binary. This connection
        gets it too when it is a member; ``exclude=ws`` leaves it out (``exclude`` is a
        connection that does not get it, as in :func:`aioendpoints.publish`).
        ``exclude_self=True`` is the deprecated spelling of ``exclude=ws``. For a group
        with history, return the message's :class:`~aioendpoints.Position`.
        """
        if exclude_self is not None:
            warnings.warn(
                "ws.publish(..., exclude_self=True) is deprecated: write exclude=ws",
                DeprecationWarning,
                stacklevel=2,
            )
            if exclude_self:
                exclude = self
        return await self._group_hub().publish(group, message, exclude=exclude, publisher=self)

    def _group_hub(self) -> GroupHub[WebSocket]:
        hub = app_value(self.request, GROUP_HUB_KEY)
        if hub is None:
            raise RuntimeError(
                f"{self.app!r} has no groups: call aioendpoints.setup(app) before using them"
            )
        return hub

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
            await self._close_response(code, _encode_reason(reason), drain=True)

    async def _close_response(self, code: int, message: bytes, *, drain: bool) -> None:
        """Close aiohttp's response; a close frame that cannot go out in time drops the peer.

        The close frame waits at most the send deadline for room behind unread data, then
        the peer has ``close_timeout`` to answer it. A peer that is gone is not an error.
        """
        response = self.response
        assert response is not None
        transport = self.request.transport
        if transport is not None and not await _room_for_close(transport, self._send_deadline()):
            drop_transport(transport, code, message, self._options.close_timeout)
            return
        try:
            # aiohttp bounds the wait for the peer's close frame itself; this is a backstop.
            async with asyncio.timeout(self._options.close_timeout + self._send_deadline()):
                await response.close(code=code, message=message, drain=drain)
        except (TimeoutError, ConnectionError):
            self._abort()

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

    def _set_closed(self, code: int, reason: str) -> None:
        if self._phase != _CLOSED:
            self._phase = _CLOSED
            self._close_code = code
            self._close_reason = reason
            # Release the connection now rather than when the deadline would have passed.
            self.authenticated()
            # No pings after a close frame.
            stop_watching(self.request)

    def _abort(self) -> None:
        """Mark the connection as dropped (1006) unless it has a close code; drop the transport."""
        self._set_closed(CloseCode.ABNORMAL_CLOSURE, "")
        transport = self.request.transport
        if transport is not None:
            transport.abort()


_HINT = "set the route's value_type or use the matching send_*() method"


def _send_type_error(wanted: str, send_type: str, value: object) -> str:
    return (
        f"send() takes {wanted} when the send_type is {send_type!r}, got "
        f"{type(value).__name__} {value!r:.40}; set the route's value_type (or send_type), "
        "or call send_json(), send_text() or send_bytes()"
    )


_BYTES_TYPES = (bytes, bytearray, memoryview)
_Payload = bytes | bytearray | memoryview
#: The frame kind each send type sends; None stands for JSON (encoded, then a text frame).
_SEND_KINDS: dict[str, WSMsgType | None] = {"text": _TEXT, "bytes": _BINARY, "json": None}
# By receive type: the frame type receive() expects, and whether it decodes JSON.
_RECEIVE_FLAGS: dict[str, tuple[WSMsgType, bool]] = {
    "text": (_TEXT, False),
    "bytes": (_BINARY, False),
    "json": (_TEXT, True),
}


_next_id = itertools.count(1).__next__


def _call_receive(receive: Callable[[], Awaitable[WSMessage]]) -> Awaitable[WSMessage]:
    """Receive through a feature's callable (a wrapper given by a receive filter or observer)."""
    return receive()


def _call_send(
    send: Callable[[_Payload, WSMsgType], Awaitable[None]], payload: _Payload, kind: WSMsgType
) -> Awaitable[None]:
    """Send through a feature's callable (a wrapper given by an observer)."""
    return send(payload, kind)


async def _not_accepted(*args: object) -> Any:
    """Stands in for the response's methods until accept(); never reached (phase checks)."""
    raise WebSocketStateError("call accept() first")


# Strong references to the closes that limits start from timer callbacks.
_background_closes: set[asyncio.Task[object]] = set()


def _run_in_background(closing: Coroutine[object, None, object]) -> None:
    task = asyncio.ensure_future(closing)
    _background_closes.add(task)
    task.add_done_callback(_background_closes.discard)


async def _room_for_close(transport: asyncio.Transport, within: float) -> bool:
    """Wait up to ``within`` seconds for room to write a close frame without blocking.

    aiohttp's writer, once paused by a slow reader, waits until the buffer is below a
    quarter of its limit; only this rare path polls for that, so that it is bounded.
    """
    if room_for(transport, _CLOSE_FRAME_ROOM):
        return True
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        await asyncio.sleep(_ROOM_POLL_INTERVAL)
        if transport.is_closing():
            return False
        if room_for(transport, _CLOSE_FRAME_ROOM):
            return True
    return False


_CLOSE_FRAME_ROOM = 2 + 2 + _MAX_REASON_BYTES
_ROOM_POLL_INTERVAL = 0.02


@functools.cache
def _writer_limit(write_buffer_limit: int) -> int:
    # Cached so that connections share one int object rather than each making its own.
    return max(write_buffer_limit // 4, 1024)


def _encode_reason(reason: str) -> bytes:
    encoded = reason.encode()
    if len(encoded) <= _MAX_REASON_BYTES:
        return encoded
    return encoded[:_MAX_REASON_BYTES].decode(errors="ignore").encode()
