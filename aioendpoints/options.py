"""Per-route settings: value types, caught close codes and the aiohttp socket options."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, cast, get_args

from .close_codes import CloseCode
from .limits import DEFAULT_HEARTBEAT, positive_or_none
from .policy import PolicyOptions, RoutePolicy
from .serialization import JSONDumps, JSONLoads, default_dumps, default_loads

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


class WebSocketOptions(PolicyOptions, total=False):
    """Keyword options accepted by ``websocket_route()`` and ``websocket_handler()``.

    * ``value_type``: ``"text"``, ``"bytes"`` or ``"json"``, the default for both
      ``receive_type`` and ``send_type``.
    * ``receive_type`` / ``send_type``: what ``ws.receive()`` returns and ``ws.send()`` takes.
    * ``caught_close_codes``: close codes whose :class:`~aioendpoints.WebSocketDisconnect`
      ends a view silently; ``"all"`` for every code. Default ``(1000, 1001)``.
    * ``protocols``: subprotocols the server speaks, in order of preference.
    * ``heartbeat``: seconds between pings; a peer that does not answer within half of it
      is closed. Default 20; ``None`` turns pings off.
    * ``receive_timeout``: seconds ``receive()`` waits before :class:`TimeoutError`.
    * ``max_msg_size``: the largest message accepted, in bytes; larger ones close with 1009.
    * ``compress``: whether to offer permessage-deflate.
    * ``close_timeout``: seconds to wait for the peer's close frame after ours.
    * ``dumps`` / ``loads``: the JSON functions for this route.
    * the close-code, origin and limit options of :class:`~aioendpoints.policy.PolicyOptions`.
    """

    value_type: ValueType
    receive_type: ValueType
    send_type: ValueType
    caught_close_codes: Iterable[int] | Literal["all"]
    protocols: Iterable[str]
    heartbeat: float | None
    receive_timeout: float | None
    max_msg_size: int
    compress: bool
    close_timeout: float
    dumps: JSONDumps
    loads: JSONLoads


def check_value_type(value: object, name: str) -> ValueType:
    """Return ``value`` if it is a value type, else raise :class:`ValueError` naming it."""
    if value not in VALUE_TYPES:
        raise ValueError(
            f"{name} must be one of {', '.join(map(repr, VALUE_TYPES))}, got {value!r}"
        )
    return cast(ValueType, value)


@dataclass(frozen=True, slots=True)
class RouteOptions:
    """The checked, resolved settings of one WebSocket route, shared by its connections."""

    receive_type: ValueType = "text"
    send_type: ValueType = "text"
    #: ``None`` catches every code.
    caught_close_codes: frozenset[int] | None = frozenset(DEFAULT_CAUGHT_CLOSE_CODES)
    protocols: tuple[str, ...] = ()
    heartbeat: float | None = DEFAULT_HEARTBEAT
    receive_timeout: float | None = None
    max_msg_size: int = DEFAULT_MAX_MESSAGE_SIZE
    compress: bool = True
    close_timeout: float = 10.0
    dumps: JSONDumps = default_dumps
    loads: JSONLoads = default_loads
    policy: RoutePolicy = field(default_factory=RoutePolicy)

    @classmethod
    def from_options(
        cls, options: WebSocketOptions, *, default_value_type: ValueType | None = None
    ) -> RouteOptions:
        """Check user options and resolve them; raise ``TypeError``/``ValueError`` on bad ones."""
        unknown = set(options) - set(WebSocketOptions.__annotations__)
        if unknown:
            raise TypeError(f"unknown WebSocket route option(s): {', '.join(sorted(unknown))}")
        value_type = options.get("value_type", default_value_type or "text")
        check_value_type(value_type, "value_type")
        receive_type = check_value_type(options.get("receive_type", value_type), "receive_type")
        send_type = check_value_type(options.get("send_type", value_type), "send_type")
        settings: dict[str, Any] = {
            "receive_type": receive_type,
            "send_type": send_type,
            "caught_close_codes": _caught_codes(
                options.get("caught_close_codes", DEFAULT_CAUGHT_CLOSE_CODES)
            ),
        }
        if "protocols" in options:
            protocols = options["protocols"]
            if isinstance(protocols, str):
                raise TypeError(f"protocols must be a list of strings, got {protocols!r}")
            settings["protocols"] = tuple(protocols)
        for name in ("heartbeat", "receive_timeout", "close_timeout"):
            if name in options:
                settings[name] = positive_or_none(name, options[name])
        if settings.get("close_timeout", 1) is None:
            raise ValueError("close_timeout must be a positive number, got None")
        if "max_msg_size" in options:
            size = options["max_msg_size"]
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise ValueError(f"max_msg_size must be a non-negative int, got {size!r}")
            settings["max_msg_size"] = size
        if "compress" in options:
            settings["compress"] = bool(options["compress"])
        for name in ("dumps", "loads"):
            if name in options:
                function = options[name]  # type: ignore[literal-required]
                if not callable(function):
                    raise TypeError(f"{name} must be callable, got {function!r}")
                settings[name] = function
        settings["policy"] = RoutePolicy.from_options(options)
        return cls(**settings)

    def catches(self, code: int) -> bool:
        """Tell whether a disconnect with ``code`` ends a view normally."""
        return self.caught_close_codes is None or code in self.caught_close_codes


def _caught_codes(codes: Iterable[int] | str) -> frozenset[int] | None:
    if codes == "all":
        return None
    if isinstance(codes, str):
        raise ValueError(f'caught_close_codes must be close codes or "all", got {codes!r}')
    codes = tuple(codes)
    if not all(isinstance(code, int) and not isinstance(code, bool) for code in codes):
        raise ValueError(f'caught_close_codes must be close codes or "all", got {codes!r}')
    return frozenset(codes)
