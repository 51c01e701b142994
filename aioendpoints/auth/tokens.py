"""Where a credential comes from, and :class:`TokenAuth`, the check built from them.

A token source is a callable ``(request) -> str | None``: the token, or ``None`` when the
request carries none (a malformed one raises :class:`AuthenticationFailed`):

* :class:`BearerToken`: ``Authorization: Bearer <token>``, for clients that set headers
  (servers, mobile and command-line apps; browsers cannot on a WebSocket).
* :class:`CookieToken`: a cookie, for pages of the same site; safe only together with the
  origin check (on by default), which stops other sites' pages from riding the cookie.
* :class:`QueryToken`: ``?access_token=...``, for browsers when a cookie will not do;
  :class:`~aioendpoints.auth.RedactingAccessLogger` keeps it out of the access log.
* :class:`SubprotocolToken`: ``new WebSocket(url, ["chat", "bearer.<token>"])``: the
  token rides in ``Sec-WebSocket-Protocol`` next to the real subprotocol. The route's
  ``protocols`` must list the real one; the server only ever selects from that list, so
  the token is never echoed back.
"""

from __future__ import annotations

import hmac
import inspect
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, Final

from aiohttp import hdrs, web

from .principal import REFRESH_TOKEN_KEY, AuthenticationFailed

__all__ = [
    "BearerToken",
    "CookieToken",
    "QueryToken",
    "StaticTokens",
    "SubprotocolToken",
    "TokenAuth",
    "TokenSource",
    "Verify",
    "refreshed_token",
]

#: ``(request) -> token or None``.
TokenSource = Callable[[web.Request], str | None]
#: ``(token) -> principal or None``, sync or async; may raise
#: :class:`AuthenticationFailed` or :class:`~aioendpoints.auth.PermissionDenied`.
Verify = Callable[[str], Any]

_SUBPROTOCOL_SEPARATOR: Final = ","


def refreshed_token(request: web.BaseRequest) -> str | None:
    """The new credential of a refresh, when a check runs for one; else ``None``.

    Every token source returns it first, so a check built on them takes refreshes as
    they are; a hand-written check that reads the credential elsewhere calls this.
    """
    return request.get(REFRESH_TOKEN_KEY)


class _Source:
    """A token source: during a refresh, the new credential; else what :meth:`find` finds."""

    __slots__ = ()

    def __call__(self, request: web.Request) -> str | None:
        refreshed = request.get(REFRESH_TOKEN_KEY)
        if refreshed is not None:
            return str(refreshed)
        return self.find(request)

    def find(self, request: web.Request) -> str | None:
        """The token that ``request`` carries here, or ``None``."""
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class BearerToken(_Source):
    """The token of an ``Authorization: Bearer <token>`` header."""

    def find(self, request: web.Request) -> str | None:
        """The token; ``None`` without the header; 401 for another scheme or no token."""
        header = request.headers.get(hdrs.AUTHORIZATION)
        if header is None:
            return None
        scheme, _, token = header.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or " " in token:
            raise AuthenticationFailed("Malformed Authorization header: expected 'Bearer <token>'")
        return token


@dataclass(frozen=True, slots=True)
class CookieToken(_Source):
    """The value of the cookie ``name``."""

    name: str = "session"

    def find(self, request: web.Request) -> str | None:
        """The cookie's value, or ``None`` without it."""
        return request.cookies.get(self.name) or None


@dataclass(frozen=True, slots=True)
class QueryToken(_Source):
    """The query parameter ``name``; it is redacted from the access log (see the docs)."""

    name: str = "access_token"

    def find(self, request: web.Request) -> str | None:
        """The parameter's value, or ``None`` without it; 401 when it is given twice."""
        values = request.query.getall(self.name, ())
        if len(values) > 1:
            raise AuthenticationFailed(f"Malformed credential: {self.name} given twice")
        return values[0] or None if values else None


@dataclass(frozen=True, slots=True)
class SubprotocolToken(_Source):
    """A token offered as the subprotocol ``<prefix><token>``, next to the real subprotocol."""

    prefix: str = "bearer."

    def find(self, request: web.Request) -> str | None:
        """The token after ``prefix``, or ``None`` when no offered subprotocol has it."""
        found = None
        for header in request.headers.getall(hdrs.SEC_WEBSOCKET_PROTOCOL, ()):
            for offered in header.split(_SUBPROTOCOL_SEPARATOR):
                offered = offered.strip()
                if offered.startswith(self.prefix):
                    if found is not None:
                        raise AuthenticationFailed("Malformed credential: two token subprotocols")
                    found = offered[len(self.prefix) :]
        return found or None


class TokenAuth:
    """An ``authenticate`` check: the first token its sources find, checked by ``verify``.

    ::

        authenticate = TokenAuth(verify, BearerToken(), QueryToken("access_token"))

    No token is a 401; ``verify`` returns the principal, or ``None`` (401) for a token
    it does not accept, or raises :class:`AuthenticationFailed` or
    :class:`~aioendpoints.auth.PermissionDenied`. The same check takes refreshes
    (``refresh_ahead`` and ``refresh_grace`` seconds; see :mod:`aioendpoints.auth.refresh`).
    """

    def __init__(
        self,
        verify: Verify,
        /,
        *sources: TokenSource,
        refresh_ahead: float = 30.0,
        refresh_grace: float = 10.0,
    ) -> None:
        if not callable(verify):
            raise TypeError(f"verify must be callable, got {verify!r}")
        for source in sources:
            if not callable(source):
                raise TypeError(f"a token source must be callable, got {source!r}")
        for name, seconds in (("refresh_ahead", refresh_ahead), ("refresh_grace", refresh_grace)):
            if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
                raise ValueError(f"{name} must be a non-negative number, got {seconds!r}")
        #: Checks a token; returns the principal.
        self.verify = verify
        #: Where tokens are looked for, in order.
        self.sources: tuple[TokenSource, ...] = sources or (BearerToken(),)
        #: Seconds before expiry that the server asks for a new token.
        self.refresh_ahead = float(refresh_ahead)
        #: Seconds after expiry that a new token is still taken.
        self.refresh_grace = float(refresh_grace)

    def __repr__(self) -> str:
        return f"TokenAuth({self.verify!r}, {', '.join(map(repr, self.sources))})"

    @property
    def redacted_query_parameters(self) -> Collection[str]:
        """The query parameters its sources read, which the access log must not show."""
        return tuple(source.name for source in self.sources if isinstance(source, QueryToken))

    @property
    def hidden_subprotocol_prefixes(self) -> tuple[str, ...]:
        """The prefixes of offered subprotocols that carry its tokens, never to be selected."""
        return tuple(
            source.prefix for source in self.sources if isinstance(source, SubprotocolToken)
        )

    async def __call__(self, request: web.Request) -> Any:
        """The principal for ``request``'s token; raises :class:`AuthenticationFailed`."""
        for source in self.sources:
            token = source(request)
            if token:
                break
        else:
            raise AuthenticationFailed("Credential required")
        principal = self.verify(token)
        if inspect.isawaitable(principal):
            principal = await principal
        if principal is None:
            raise AuthenticationFailed("Invalid credential")
        return principal


class StaticTokens:
    """A ``verify`` for fixed secrets (API keys): ``{token: principal}``.

    Every known token is compared with :func:`hmac.compare_digest`, so how long a check
    takes does not tell how much of a guess was right.
    """

    def __init__(self, tokens: Mapping[str, Any]) -> None:
        self._tokens = [(token.encode(), principal) for token, principal in tokens.items()]

    def __repr__(self) -> str:
        return f"<StaticTokens count={len(self._tokens)}>"

    def __call__(self, token: str) -> Any:
        """The principal of ``token``, or ``None``."""
        guess = token.encode()
        found = None
        for known, principal in self._tokens:
            if hmac.compare_digest(known, guess):
                found = principal
        return found
