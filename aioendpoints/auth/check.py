"""The check before the upgrade, and the per-group permission.

A route's ``authenticate`` option (or :func:`aioendpoints.setup`'s default) is a callable
``(request) -> principal``, sync or async. It runs after the origin check and before the
view, so a refused client gets an HTTP response, never an upgraded socket closed later:

* it returns ``None`` or raises :class:`AuthenticationFailed`: HTTP 401 (no credential,
  or a malformed, forged, expired or revoked one);
* it raises :class:`PermissionDenied`: HTTP 403 (a known peer that may not connect here);
* it returns anything else: that is the principal, :attr:`WebSocket.principal`.

A principal whose ``expires_at`` (seconds since the epoch, or an aware ``datetime``) has
passed is refused with 401 too; one that expires later must be refreshed in time (see
:mod:`aioendpoints.auth.refresh`).

``group_permission`` is a callable ``(principal, group) -> bool``, sync or async, consulted
by :meth:`WebSocket.join` and by :meth:`WebSocket.publish`; ``False`` raises
:class:`GroupPermissionDenied`.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import Final

from aiohttp import hdrs, web

from ..request_keys import (
    GROUP_CHECK_KEY,
    HIDDEN_SUBPROTOCOLS_KEY,
    PRINCIPAL_KEY,
    RECEIVE_FILTER_KEY,
    USER_ID_KEY,
)
from ..websocket import WebSocket
from .access_log import REDACTED_QUERY_KEY
from .principal import (
    Authenticate,
    AuthenticationFailed,
    GroupPermission,
    GroupPermissionDenied,
    PermissionDenied,
    call_check,
    expiry_of,
    user_id_of,
)
from .refresh import refresh_filter

__all__ = ["AUTH_KEY", "AuthSettings"]

logger = logging.getLogger("aioendpoints.auth")


@dataclass(frozen=True, slots=True)
class AuthSettings:
    """A route's (or the application's) ``authenticate`` and ``group_permission``."""

    authenticate: Authenticate | None = None
    group_permission: GroupPermission | None = None

    @classmethod
    def checked(
        cls, authenticate: object = None, group_permission: object = None
    ) -> AuthSettings | None:
        """Check the options; ``None`` when neither is set. Raises ``TypeError``."""
        for name, value in (("authenticate", authenticate), ("group_permission", group_permission)):
            if value is not None and not callable(value):
                raise TypeError(f"{name} must be callable, got {value!r}")
        if authenticate is None and group_permission is None:
            return None
        return cls(authenticate, group_permission)  # type: ignore[arg-type]

    def over(self, default: AuthSettings | None) -> AuthSettings:
        """These settings, with ``default``'s where these have none."""
        if default is None:
            return self
        return AuthSettings(
            self.authenticate or default.authenticate,
            self.group_permission or default.group_permission,
        )

    def mark(self, request: web.Request) -> None:
        """Tell the access log and the connection where ``request`` carries credentials."""
        check = self.authenticate
        names: Collection[str] = getattr(check, "redacted_query_parameters", ())
        if names:
            request[REDACTED_QUERY_KEY] = names
        prefixes: tuple[str, ...] = getattr(check, "hidden_subprotocol_prefixes", ())
        if prefixes:
            request[HIDDEN_SUBPROTOCOLS_KEY] = prefixes

    async def admit(self, request: web.Request) -> None:
        """Authenticate ``request`` and prepare its connection; raise HTTP 401 or 403."""
        authenticate = self.authenticate
        if authenticate is not None:
            try:
                principal = await call_check(authenticate, request)
            except AuthenticationFailed as failure:
                logger.debug("Refused %s with 401: %s", request.path, failure.reason)
                raise web.HTTPUnauthorized(
                    text=failure.reason, headers={hdrs.WWW_AUTHENTICATE: failure.challenge}
                ) from None
            except PermissionDenied as denial:
                logger.debug("Refused %s with 403: %s", request.path, denial.reason)
                raise web.HTTPForbidden(text=denial.reason) from None
            request[PRINCIPAL_KEY] = principal
            user_id = user_id_of(principal)
            if user_id is not None:
                request[USER_ID_KEY] = user_id
            if expiry_of(principal) is not None:
                request[RECEIVE_FILTER_KEY] = refresh_filter(authenticate)
        if self.group_permission is not None:
            request[GROUP_CHECK_KEY] = _group_check(self.group_permission)


def _group_check(permission: GroupPermission) -> Callable[[WebSocket, str], Awaitable[None]]:
    async def check(websocket: WebSocket, group: str) -> None:
        allowed = permission(websocket.principal, group)
        if inspect.isawaitable(allowed):
            allowed = await allowed
        if not allowed:
            logger.debug("Refused group %r to %r", group, websocket)
            raise GroupPermissionDenied(group)

    return check


#: The application's default :class:`AuthSettings`, set by :func:`aioendpoints.setup`.
AUTH_KEY: Final = web.AppKey("aioendpoints.auth", AuthSettings)
