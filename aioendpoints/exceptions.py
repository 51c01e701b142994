"""Exceptions raised by aioendpoints.

The tree::

    Exception
    ├── WebSocketDisconnect       the connection is gone (peer closed, dropped, or we closed)
    ├── WebSocketClose            close the connection with this code and reason
    │   ├── UnsupportedData       1003: a frame of the wrong kind for the route's value type
    │   ├── InvalidData           1007: a payload that does not decode (invalid JSON)
    │   └── auth.GroupPermissionDenied  1008: a group the route's group_permission refuses
    ├── auth.AuthenticationFailed no credential or a bad one: HTTP 401 (4401 on a refresh)
    ├── auth.PermissionDenied     a known peer that may not connect: HTTP 403 (4403)
    └── RuntimeError
        └── WebSocketStateError   an operation that the connection's state does not allow

The ``auth`` ones live in :mod:`aioendpoints.auth`.
"""

from __future__ import annotations

from .close_codes import CloseCode

__all__ = [
    "InvalidData",
    "UnsupportedData",
    "WebSocketClose",
    "WebSocketDisconnect",
    "WebSocketStateError",
]


class WebSocketDisconnect(Exception):
    """The connection is closed; raised by ``receive*`` and ``send*``.

    ``code`` is the close code: the peer's, ours when we closed first, or 1006
    (:attr:`CloseCode.ABNORMAL_CLOSURE`) when the connection dropped without a
    close frame.
    """

    def __init__(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason

    def __str__(self) -> str:
        return f"WebSocket closed with code {self.code}" + (
            f": {self.reason}" if self.reason else ""
        )


class WebSocketClose(Exception):
    """Raise from a view or hook to close the connection with ``code`` and ``reason``.

    Before the handshake is accepted, it refuses the connection with HTTP 403 instead.
    It is not a server fault: no traceback is logged.
    """

    default_code: int = CloseCode.NORMAL_CLOSURE

    def __init__(self, code: int | None = None, reason: str = "") -> None:
        code = self.default_code if code is None else code
        super().__init__(code, reason)
        self.code = code
        self.reason = reason

    def __str__(self) -> str:
        return f"close with code {self.code}" + (f": {self.reason}" if self.reason else "")


class UnsupportedData(WebSocketClose):
    """A text frame arrived where bytes were expected, or the other way round (1003)."""

    default_code = CloseCode.UNSUPPORTED_DATA


class InvalidData(WebSocketClose):
    """A message that does not decode for the route's value type, such as invalid JSON (1007)."""

    default_code = CloseCode.INVALID_PAYLOAD


class WebSocketStateError(RuntimeError):
    """An operation the connection's state does not allow, like ``send()`` before ``accept()``."""
