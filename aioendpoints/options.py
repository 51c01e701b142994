"""A route's options: one flat, frozen object, checked once when the route is declared.

:class:`WebSocketOptions` is what a route takes as keyword arguments; :class:`RouteOptions`
is what its connections read, resolved and checked. The mechanisms that use the options
stay in their own modules: the origin check in ``origins.py``, the token bucket, send
guard and connection counter in ``limits.py``, the close-code lookup in ``policy.py``.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict, cast, get_args

from .close_codes import CloseCode
from .limits import (
    DEFAULT_HEARTBEAT,
    DEFAULT_SEND_TIMEOUT,
    DEFAULT_WRITE_BUFFER_LIMIT,
    ConnectionCounter,
    RateLimit,
)
from .origins import AllowedOrigins, OriginPolicy
from .policy import CloseCodeMapping, check_close_codes, mapped_close
from .serialization import (
    JSONDumps,
    JSONLoads,
    MessageCodec,
    MessageRouter,
    default_dumps,
    default_loads,
)

__all__ = [
    "DEFAULT_MAX_MESSAGE_SIZE",
    "RouteOptions",
    "ValueType",
    "WebSocketOptions",
    "check_value_type",
]

ValueType = Literal["text", "bytes", "json"]
VALUE_TYPES: tuple[str, ...] = get_args(ValueType)

#: Messages larger than this close the connection with 1009 (1 MiB).
DEFAULT_MAX_MESSAGE_SIZE = 1024 * 1024
DEFAULT_CAUGHT_CLOSE_CODES = (CloseCode.NORMAL_CLOSURE, CloseCode.GOING_AWAY)


class WebSocketOptions(TypedDict, total=False):
    """Keyword options accepted by ``websocket_route()`` and ``websocket_handler()``.

    Messages

    * ``value_type``: ``"text"``, ``"bytes"`` or ``"json"``, the default for both
      ``receive_type`` and ``send_type``.
    * ``receive_type`` / ``send_type``: what ``ws.receive()`` returns and ``ws.send()`` takes.
    * ``dumps`` / ``loads``: the JSON functions for this route.
    * ``max_msg_size``: the largest message accepted, in bytes; larger ones close with 1009.
    * ``compress``: whether to offer permessage-deflate.
    * ``protocols``: subprotocols the server speaks, in order of preference.

    Closing

    * ``caught_close_codes``: close codes whose :class:`~aioendpoints.WebSocketDisconnect`
      ends a view silently; ``"all"`` for every code. Default ``(1000, 1001)``.
    * ``close_codes``: ``{ExceptionType: code}`` or ``{ExceptionType: (code, reason)}``;
      a view or hook that raises one closes with that code, without a logged traceback
      (unless the code is 1011).
    * ``close_timeout``: seconds to wait for the peer's close frame after ours.

    Timeouts

    * ``heartbeat``: seconds between pings of an idle connection; anything the peer sends
      counts as an answer, and a peer silent for 1 to 1.5 times this is dropped (1006).
      Default 20; ``None`` turns pings off.
    * ``receive_timeout``: seconds ``receive()`` waits before :class:`TimeoutError`.
    * ``idle_timeout``: seconds a ``receive()`` waits before the connection is closed
      with 1001 "Idle timeout". Default ``None`` (no idle timeout).
    * ``auth_timeout``: seconds after ``accept()`` for the view to call
      ``ws.authenticated()``; otherwise the connection is closed with 1008. Default ``None``.
    * ``send_timeout``: seconds a send may wait for a slow reader before the connection
      is closed with 1008. Default 10.

    Limits

    * ``allowed_origins``: cross-site origins that may connect, ``"*"`` for any;
      default: :func:`aioendpoints.setup`'s, else same-origin only.
    * ``write_buffer_limit``: bytes of unsent data queued before sends wait. Default 256 KiB.
    * ``rate_limit``: ``RateLimit(per_second, burst)`` for incoming messages; over it the
      connection is closed with 1008. Default ``None``.
    * ``max_connections`` / ``max_connections_per_client``: open connections on the route,
      in all and per client address; over a cap the handshake gets HTTP 503.
      Default ``None``.

    Typed messages (see :mod:`aioendpoints.messages`)

    * ``messages``: the message class, union or tuple of classes the client sends (msgspec
      Structs or pydantic models): ``receive()`` returns them decoded and checked, and
      ``send()`` encodes them. An endpoint's come from its
      :func:`~aioendpoints.on_message` handlers.
    * ``send_messages``: the message classes the server sends, for the route's AsyncAPI
      description (an endpoint's handlers' return annotations are added).
    * ``invalid_messages``: ``"reply"`` (the default) answers an invalid message with an
      error message and keeps the connection open; ``"close"`` closes it with 1007.
    * ``request_id``: the field of a request whose value its reply repeats. Default ``"id"``.
    * ``discriminator``: the field that tells pydantic models apart. Default ``"type"``
      (msgspec Structs name theirs with ``tag_field``, ``"type"`` by default too).

    Authentication (see :mod:`aioendpoints.auth`)

    * ``authenticate``: a check ``(request) -> principal`` run before the upgrade; it
      refuses with HTTP 401 or 403. Default: :func:`aioendpoints.setup`'s, else none.
    * ``group_permission``: ``(principal, group) -> bool``, asked by ``ws.join()`` and
      ``ws.publish()``. Default: :func:`aioendpoints.setup`'s, else none.

    Operations (see :doc:`/howto/operating`)

    * ``trace_messages``: ``True`` for an OpenTelemetry span per received message on this
      route, ``False`` for none, whatever :func:`aioendpoints.setup`'s ``trace_messages``
      says; it needs tracing on (``setup(app, tracing=...)``). Default ``None``: the app's.
    """

    value_type: ValueType
    receive_type: ValueType
    send_type: ValueType
    dumps: JSONDumps
    loads: JSONLoads
    max_msg_size: int
    compress: bool
    protocols: Iterable[str]
    caught_close_codes: Iterable[int] | Literal["all"]
    close_codes: CloseCodeMapping
    close_timeout: float
    heartbeat: float | None
    receive_timeout: float | None
    idle_timeout: float | None
    auth_timeout: float | None
    send_timeout: float | None
    allowed_origins: AllowedOrigins
    write_buffer_limit: int
    rate_limit: RateLimit | tuple[float, int] | None
    max_connections: int | None
    max_connections_per_client: int | None
    messages: Any
    send_messages: Any
    invalid_messages: Literal["reply", "close"]
    request_id: str
    discriminator: str
    authenticate: Callable[[Any], Any] | None
    group_permission: Callable[[Any, str], Any] | None
    trace_messages: bool | None


@dataclass(frozen=True, slots=True)
class RouteOptions:
    """The checked, resolved options of one WebSocket route, shared by its connections."""

    receive_type: ValueType = "text"
    send_type: ValueType = "text"
    dumps: JSONDumps = default_dumps
    loads: JSONLoads = default_loads
    max_msg_size: int = DEFAULT_MAX_MESSAGE_SIZE
    compress: bool = True
    protocols: tuple[str, ...] = ()
    #: ``None`` catches every code.
    caught_close_codes: frozenset[int] | None = frozenset(DEFAULT_CAUGHT_CLOSE_CODES)
    #: Exception types mapped to a close code and reason.
    close_codes: Mapping[type[BaseException], tuple[int, str]] = field(default_factory=dict)
    close_timeout: float = 10.0
    heartbeat: float | None = DEFAULT_HEARTBEAT
    receive_timeout: float | None = None
    idle_timeout: float | None = None
    auth_timeout: float | None = None
    send_timeout: float | None = DEFAULT_SEND_TIMEOUT
    #: ``None``: the application's default (see :func:`aioendpoints.setup`).
    allowed_origins: OriginPolicy | None = None
    write_buffer_limit: int = DEFAULT_WRITE_BUFFER_LIMIT
    rate_limit: RateLimit | None = None
    max_connections: int | None = None
    max_connections_per_client: int | None = None
    #: The route's typed messages, or ``None`` for plain values.
    codec: MessageCodec | None = None
    #: ``None``: the application's default (see :mod:`aioendpoints.auth`).
    authenticate: Callable[[Any], Any] | None = None
    group_permission: Callable[[Any, str], Any] | None = None
    #: ``None``: the application's default (see :func:`aioendpoints.setup`).
    trace_messages: bool | None = None

    @classmethod
    def from_options(
        cls,
        options: Mapping[str, Any],
        *,
        default_value_type: ValueType | None = None,
        message_router: MessageRouter | None = None,
    ) -> RouteOptions:
        """Check user options and resolve them; raise ``TypeError``/``ValueError`` on bad ones."""
        unknown = [name for name in options if name not in _CHECKS]
        if unknown:
            raise TypeError(_unknown_options_message(unknown))
        settings = {name: _CHECKS[name](name, value) for name, value in options.items()}
        if message_router is not None or any(name in options for name in _MESSAGE_OPTIONS):
            _add_codec(settings, message_router)
        value_type = settings.pop("value_type", default_value_type or "text")
        check_value_type(value_type, "value_type")
        settings.setdefault("receive_type", value_type)
        settings.setdefault("send_type", value_type)
        if settings.get("idle_timeout") is not None and settings.get("receive_timeout") is not None:
            raise ValueError(
                "set idle_timeout (closes the connection with 1001) or receive_timeout "
                "(raises TimeoutError in the view), not both"
            )
        return cls(**settings)

    def catches(self, code: int) -> bool:
        """Tell whether a disconnect with ``code`` ends a view normally.

        A peer that vanished (1006) always does: that is an ordinary end, not a fault.
        """
        return (
            self.caught_close_codes is None
            or code in self.caught_close_codes
            or code == CloseCode.ABNORMAL_CLOSURE
        )

    def close_for(self, error: BaseException) -> tuple[int, str] | None:
        """The close code and reason ``close_codes`` maps ``error`` to, or ``None``."""
        return mapped_close(self.close_codes, error)

    def counter(self) -> ConnectionCounter | None:
        """A connection counter for the route, or ``None`` when it has no connection cap."""
        if self.max_connections is None and self.max_connections_per_client is None:
            return None
        return ConnectionCounter(self.max_connections, self.max_connections_per_client)


def check_value_type(value: object, name: str) -> ValueType:
    """Return ``value`` if it is a value type, else raise :class:`ValueError` naming it."""
    if value not in VALUE_TYPES:
        raise ValueError(
            f"{name} must be one of {', '.join(map(repr, VALUE_TYPES))}, got {value!r}"
        )
    return cast(ValueType, value)


def positive_or_none(name: str, value: object) -> float | None:
    """Check a duration option: a positive number of seconds, or ``None`` for none."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ValueError(f"{name} must be a positive number or None, got {value!r}")
    return float(value)


def _positive(name: str, value: object) -> float:
    if value is None:
        raise ValueError(f"{name} must be a positive number, got None")
    return cast(float, positive_or_none(name, value))


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def _positive_int_or_none(name: str, value: object) -> int | None:
    return None if value is None else _positive_int(name, value)


def _size(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative int, got {value!r}")
    return value


def _callable(name: str, value: object) -> object:
    if not callable(value):
        raise TypeError(f"{name} must be callable, got {value!r}")
    return value


def _callable_or_none(name: str, value: object) -> object:
    return None if value is None else _callable(name, value)


def _protocols(name: str, value: object) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise TypeError(f"{name} must be a list of strings, got {value!r}")
    return tuple(value)


def _caught_codes(name: str, codes: object) -> frozenset[int] | None:
    if codes == "all":
        return None
    if not isinstance(codes, str) and isinstance(codes, Iterable):
        codes = tuple(codes)
        if all(isinstance(code, int) and not isinstance(code, bool) for code in codes):
            return frozenset(codes)
    raise ValueError(f'{name} must be close codes or "all", got {codes!r}')


def _bool_or_none(name: str, value: object) -> bool | None:
    if value is not None and not isinstance(value, bool):
        raise TypeError(f"{name} must be True, False or None, got {value!r}")
    return value


def _origins(name: str, value: object) -> OriginPolicy | None:
    return None if value is None else OriginPolicy.from_origins(cast(AllowedOrigins, value))


def _rate_limit(name: str, value: object) -> RateLimit | None:
    if value is None:
        return None
    if isinstance(value, tuple) and len(value) == 2:
        per_second, burst = value
        if (
            isinstance(per_second, int | float)
            and not isinstance(per_second, bool)
            and per_second > 0
            and isinstance(burst, int)
            and not isinstance(burst, bool)
            and burst >= 1
        ):
            return RateLimit(float(per_second), burst)
    raise ValueError(
        f"{name} must be RateLimit(per_second, burst) with per_second > 0 and "
        f"burst >= 1, got {value!r}"
    )


#: How each option is checked: a function of the option's name and value that returns
#: the resolved value or raises an error naming the option.
_CHECKS: dict[str, Callable[[str, Any], Any]] = {
    "value_type": lambda name, value: check_value_type(value, name),
    "receive_type": lambda name, value: check_value_type(value, name),
    "send_type": lambda name, value: check_value_type(value, name),
    "dumps": _callable,
    "loads": _callable,
    "max_msg_size": _size,
    "compress": lambda name, value: bool(value),
    "protocols": _protocols,
    "caught_close_codes": _caught_codes,
    "close_codes": lambda name, value: check_close_codes(value),
    "close_timeout": _positive,
    "heartbeat": positive_or_none,
    "receive_timeout": positive_or_none,
    "idle_timeout": positive_or_none,
    "auth_timeout": positive_or_none,
    "send_timeout": positive_or_none,
    "allowed_origins": _origins,
    "write_buffer_limit": _positive_int,
    "rate_limit": _rate_limit,
    "max_connections": _positive_int_or_none,
    "max_connections_per_client": _positive_int_or_none,
    # Checked with the message classes, when the route's codec is built.
    "messages": lambda name, value: value,
    "send_messages": lambda name, value: value,
    "invalid_messages": lambda name, value: value,
    "request_id": lambda name, value: value,
    "discriminator": lambda name, value: value,
    "authenticate": _callable_or_none,
    "group_permission": _callable_or_none,
    "trace_messages": _bool_or_none,
}
_MESSAGE_OPTIONS = ("messages", "send_messages", "invalid_messages", "request_id", "discriminator")

#: Options of other libraries that users reach for, and what to use here instead.
_INSTEAD = {
    "encoding": "value_type (encoding is the WebSocketEndpoint class attribute)",
}


def _unknown_options_message(unknown: list[str]) -> str:
    hints = []
    for name in unknown:
        suggestion = _INSTEAD.get(name)
        if suggestion is None:
            close = difflib.get_close_matches(name, _CHECKS, n=1)
            suggestion = close[0] if close else None
        hints.append(f"{name!r}" + (f" (did you mean {suggestion}?)" if suggestion else ""))
    return f"unknown WebSocket route option(s): {', '.join(hints)}"


def _add_codec(settings: dict[str, Any], router: MessageRouter | None) -> None:
    """Resolve the typed-message options into a codec, which sets the route's JSON functions."""
    # Imported only by routes that use typed messages: msgspec and pydantic stay unloaded.
    from .messages.codecs import codec_for

    if router is not None and "messages" in settings:
        raise TypeError(
            "the messages option is for function views; an endpoint's messages are the "
            "ones its on_message handlers take"
        )
    for name in ("value_type", "receive_type", "send_type", "dumps", "loads"):
        if name in settings and (name in ("dumps", "loads") or settings[name] != "json"):
            raise ValueError(f"a route with typed messages sends and receives JSON: drop {name}")
    options = {name: settings.pop(name) for name in _MESSAGE_OPTIONS if name in settings}
    codec = codec_for(
        receives=router.receives if router is not None else options.get("messages"),
        sends=options.get("send_messages"),
        handler_sends=router.sends if router is not None else (),
        invalid_messages=options.get("invalid_messages", "reply"),
        request_id=options.get("request_id", "id"),
        discriminator=options.get("discriminator", "type"),
    )
    settings.update(
        receive_type="json", send_type="json", codec=codec, loads=codec.decode, dumps=codec.encode
    )
