"""Authentication and authorisation: who may connect, join which group, and for how long.

* A route's ``authenticate`` check (or :func:`aioendpoints.setup`'s default) runs before
  the upgrade: 401 or 403 instead of a socket; its principal is
  :attr:`WebSocket.principal <aioendpoints.WebSocket.principal>`.
* Token sources (:class:`BearerToken`, :class:`CookieToken`, :class:`QueryToken`,
  :class:`SubprotocolToken`) and :class:`TokenAuth` build that check; aiohttp-session and
  aiohttp-security apps use :func:`session_identity` and :func:`security_identity`.
* A principal with ``expires_at`` is asked to refresh, or closed with 4401
  (:mod:`aioendpoints.auth.refresh`).
* ``group_permission`` decides who joins and publishes to which group
  (:class:`GroupPermissionDenied`).
* :class:`RedactingAccessLogger` keeps query-string tokens out of the access log.
"""

from .access_log import REDACTED, RedactingAccessLogger, redacted_path_qs
from .check import AUTH_KEY, AuthSettings
from .integrations import security_group_permission, security_identity, session_identity
from .principal import (
    Authenticate,
    AuthenticationFailed,
    GroupPermission,
    GroupPermissionDenied,
    PermissionDenied,
    Principal,
)
from .refresh import (
    CREDENTIAL_EXPIRED,
    CREDENTIAL_REFUSED,
    DEFAULT_REFRESH_AHEAD,
    DEFAULT_REFRESH_GRACE,
    PRINCIPAL_REFUSED,
)
from .tokens import (
    BearerToken,
    CookieToken,
    QueryToken,
    StaticTokens,
    SubprotocolToken,
    TokenAuth,
    TokenSource,
    Verify,
    refreshed_token,
)

__all__ = [
    # The check and the principal
    "Authenticate",
    "Principal",
    "AuthenticationFailed",
    "PermissionDenied",
    # Token sources
    "TokenAuth",
    "TokenSource",
    "Verify",
    "BearerToken",
    "CookieToken",
    "QueryToken",
    "SubprotocolToken",
    "StaticTokens",
    "refreshed_token",
    "session_identity",
    "security_identity",
    "security_group_permission",
    # Expiry and refresh
    "CREDENTIAL_EXPIRED",
    "CREDENTIAL_REFUSED",
    "PRINCIPAL_REFUSED",
    "DEFAULT_REFRESH_AHEAD",
    "DEFAULT_REFRESH_GRACE",
    # Groups
    "GroupPermission",
    "GroupPermissionDenied",
    # Logs
    "REDACTED",
    "RedactingAccessLogger",
    "redacted_path_qs",
    # Settings
    "AUTH_KEY",
    "AuthSettings",
]
