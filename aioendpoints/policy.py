"""The close-code policy: which close code each way of ending a connection gets.

The defaults follow RFC 6455 §7.4 (see ``docs/topics/close-codes.rst`` for the whole table). A route
can map its own exception types to close codes with the ``close_codes`` option, and so
override the codes of the built-in conditions too, since those are exceptions as well
(:class:`~aioendpoints.UnsupportedData` is 1003, :class:`~aioendpoints.InvalidData` 1007)::

    @routes.websocket_route("/chat", close_codes={RoomFull: (4003, "room is full")})
    async def chat(ws: WebSocket) -> None: ...
"""

from __future__ import annotations

from collections.abc import Mapping

from .close_codes import CloseCode, is_sendable_close_code

__all__ = [
    "CloseCodeMapping",
    "check_close_codes",
    "mapped_close",
    "peer_close_reply",
]

#: Exception types mapped to a close code, or to a close code and a reason.
CloseCodeMapping = Mapping[type[BaseException], int | tuple[int, str]]

_MAX_REASON_BYTES = 123  # RFC 6455 §5.5: a close payload is the 2-byte code plus 123 bytes.


def check_close_codes(mapping: object) -> dict[type[BaseException], tuple[int, str]]:
    """Check a user's ``close_codes`` option; raise ``TypeError``/``ValueError`` on bad ones."""
    if mapping is None:
        return {}
    if not isinstance(mapping, Mapping):
        raise TypeError(f"close_codes must map exception types to close codes, got {mapping!r}")
    checked: dict[type[BaseException], tuple[int, str]] = {}
    for exception_type, value in mapping.items():
        if not (isinstance(exception_type, type) and issubclass(exception_type, Exception)):
            raise TypeError(f"close_codes keys must be exception classes, got {exception_type!r}")
        checked[exception_type] = _check_close(exception_type, value)
    return checked


def mapped_close(
    mapping: Mapping[type[BaseException], tuple[int, str]], error: BaseException
) -> tuple[int, str] | None:
    """The close code and reason that ``error`` maps to, or ``None`` if it is not mapped.

    An exception maps through its most specific class in the mapping (its method
    resolution order decides), so ``{LookupError: 4004}`` covers ``KeyError`` too.
    """
    if not mapping:
        return None
    for cls in type(error).__mro__:
        found = mapping.get(cls)
        if found is not None:
            return found
    return None


def _check_close(exception_type: type[BaseException], value: object) -> tuple[int, str]:
    if isinstance(value, tuple) and len(value) == 2:
        code, reason = value
    else:
        code, reason = value, ""
    name = exception_type.__qualname__
    if isinstance(code, bool) or not isinstance(code, int) or not is_sendable_close_code(code):
        raise ValueError(
            f"close_codes[{name}] must be a close code that can be sent "
            f"(1000-1003, 1007-1014 or 3000-4999), optionally with a reason, got {value!r}"
        )
    if not isinstance(reason, str):
        raise TypeError(f"close_codes[{name}] reason must be a str, got {reason!r}")
    if len(reason.encode()) > _MAX_REASON_BYTES:
        raise ValueError(
            f"close_codes[{name}] reason must be at most {_MAX_REASON_BYTES} bytes "
            f"of UTF-8, got {len(reason.encode())}"
        )
    return int(code), reason


def peer_close_reply(code: int) -> int:
    """The code to answer a peer's close frame with (RFC 6455 §5.5.1, §7.4).

    A valid code is echoed; a close frame without a code is answered with 1000; a code a
    peer must never send (1005, 1006, 1015, anything below 1000, the reserved 1004 and
    1016-2999, or 5000 and above) fails the connection with 1002 instead of being echoed.
    """
    if code == 0:  # aiohttp's value for a close frame without a payload.
        return CloseCode.NORMAL_CLOSURE
    if is_sendable_close_code(code):
        return code
    return CloseCode.PROTOCOL_ERROR
