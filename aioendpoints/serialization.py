"""JSON encoding (orjson when it is installed, the standard library otherwise), and the
interfaces through which typed messages plug into routes and endpoints."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Protocol

__all__ = [
    "JSONDumps",
    "JSONLoads",
    "MessageCodec",
    "MessageRouter",
    "default_dumps",
    "default_loads",
]

#: Turns a value into JSON text; ``bytes`` (UTF-8) is accepted and saves a copy.
JSONDumps = Callable[[Any], str | bytes]
#: Turns JSON text into a value; raises :class:`ValueError` on invalid input.
JSONLoads = Callable[[str], Any]


# One encoder for every message: json.dumps() with non-default options builds a new
# JSONEncoder per call.
_stdlib_dumps: Callable[[Any], str] = json.JSONEncoder(
    separators=(",", ":"), ensure_ascii=False
).encode


try:  # pragma: no cover - which branch runs depends on the installed extras
    import orjson
except ImportError:  # pragma: no cover
    default_dumps: JSONDumps = _stdlib_dumps
    default_loads: JSONLoads = json.loads
else:  # pragma: no cover
    default_dumps = orjson.dumps
    default_loads = orjson.loads


class MessageCodec(Protocol):
    """Typed messages on a route, as the connection sees them.

    :mod:`aioendpoints.messages` builds one for each route that declares message classes;
    the connection decodes and encodes through it and asks it what to tell a client whose
    message is invalid.
    """

    #: Whether an invalid message closes the connection with 1007 rather than get a reply.
    close_invalid: bool
    #: The field of a message that carries its request id, repeated in the reply.
    request_id: str
    #: Decodes a message into its class; raises :class:`ValueError` when it is invalid.
    decode: Callable[[str | bytes], Any]
    #: Encodes a message (or any JSON value) as JSON.
    encode: Callable[[Any], bytes]

    def invalid(self, data: str | bytes, error: ValueError) -> tuple[Any, str]:
        """The error reply to send for an invalid message, and a one-line description."""
        ...

    def reply(self, value: Any, request_id: Any) -> Any:
        """``value`` as the reply to the request ``request_id``: what to send."""
        ...

    def error(self, text: str, request_id: Any) -> Any:
        """An error message saying ``text``, for the request ``request_id`` (or ``None``)."""
        ...


class MessageRouter(Protocol):
    """An endpoint's typed-message handlers, compiled when its class is defined."""

    #: The message classes the client sends, one handler each.
    receives: tuple[type, ...]
    #: The message classes the handlers return, for the route's description.
    sends: tuple[type, ...]

    async def handle(self, endpoint: Any, websocket: Any, message: Any) -> None:
        """Hand ``message`` to its handler and send the handler's reply, if any."""
        ...
