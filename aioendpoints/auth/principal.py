"""Principals and the exceptions of authentication.

A principal is whatever a route's ``authenticate`` check returns for a peer: a
:class:`Principal`, or any object of yours. One with an ``expires_at`` attribute (seconds
since the epoch, or an aware ``datetime``) expires: see :mod:`aioendpoints.auth.refresh`.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from aiohttp import web

from ..close_codes import CloseCode
from ..exceptions import WebSocketClose
from ..request_keys import request_key

__all__ = [
    "REFRESH_TOKEN_KEY",
    "Authenticate",
    "AuthenticationFailed",
    "GroupPermission",
    "GroupPermissionDenied",
    "PermissionDenied",
    "Principal",
    "call_check",
    "expiry_of",
    "user_id_of",
]

#: The key, on the copy of the handshake request that a refresh checks, of the new
#: credential (see :func:`aioendpoints.auth.refreshed_token`).
REFRESH_TOKEN_KEY: Final = request_key("aioendpoints.refresh_token")

#: ``(request) -> principal``, sync or async; ``None`` or :class:`AuthenticationFailed`
#: refuses with 401, :class:`PermissionDenied` with 403.
Authenticate = Callable[[web.Request], Any]
#: ``(principal, group) -> bool``, sync or async: may this connection join (or publish to)
#: ``group``?
GroupPermission = Callable[[Any, str], bool | Awaitable[bool]]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a peer is, as a check can return it (any other object will do as well).

    ``expires_at`` (seconds since the epoch) makes the connection ask for a refresh
    before then; ``claims`` keeps whatever else the credential said.
    """

    id: str
    expires_at: float | None = None
    scopes: frozenset[str] = frozenset()
    claims: Mapping[str, Any] = field(default_factory=dict)


class AuthenticationFailed(Exception):
    """No credential, or a bad one: HTTP 401 before the upgrade, close 4401 on a refresh.

    ``challenge`` is the ``WWW-Authenticate`` header of the 401 response.
    """

    def __init__(self, reason: str = "Authentication required", *, challenge: str = "Bearer"):
        super().__init__(reason)
        self.reason = reason
        self.challenge = challenge


class PermissionDenied(Exception):
    """A known peer that may not connect: HTTP 403 before the upgrade, close 4403 on a refresh."""

    def __init__(self, reason: str = "Not allowed") -> None:
        super().__init__(reason)
        self.reason = reason


class GroupPermissionDenied(WebSocketClose):
    """Raised by :meth:`WebSocket.join` and :meth:`WebSocket.publish` when the route's
    ``group_permission`` refuses the group.

    Catch it to answer with an error message and keep the connection; unhandled, it closes
    the connection with 1008 (or the code the route's ``close_codes`` maps it to).
    """

    default_code = CloseCode.POLICY_VIOLATION

    def __init__(self, group: str) -> None:
        super().__init__(reason="Not allowed in this group")
        #: The group that was refused.
        self.group = group


def expiry_of(principal: object) -> float | None:
    """The principal's ``expires_at`` as seconds since the epoch, or ``None``."""
    expires_at = getattr(principal, "expires_at", None)
    if expires_at is None:
        return None
    if isinstance(expires_at, datetime):
        return expires_at.timestamp()
    if isinstance(expires_at, int | float) and not isinstance(expires_at, bool):
        return float(expires_at)
    raise TypeError(
        f"a principal's expires_at must be seconds since the epoch or a datetime, "
        f"got {expires_at!r}"
    )


def user_id_of(principal: object) -> str | None:
    """The user id of a principal: its ``id`` attribute, or the principal itself if it is a
    ``str``; ``None`` for other principals without an ``id``.
    """
    user_id = getattr(principal, "id", None)
    if user_id is not None:
        return str(user_id)
    return principal if isinstance(principal, str) else None


async def call_check(authenticate: Authenticate, request: web.Request) -> Any:
    """Run ``authenticate``; return a live principal or raise AuthenticationFailed."""
    principal = authenticate(request)
    if inspect.isawaitable(principal):
        principal = await principal
    if principal is None:
        raise AuthenticationFailed()
    expires_at = expiry_of(principal)
    if expires_at is not None and expires_at <= time.time():
        raise AuthenticationFailed("Credential expired")
    return principal
