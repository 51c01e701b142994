"""The origin check, which defends against cross-site WebSocket hijacking.

Browsers let any page open a WebSocket to any server and send the user's cookies along;
only the ``Origin`` header tells the server which site's page is asking. So every route
refuses cross-site browser requests with HTTP 403 unless their origin is allowed:

* a request without ``Origin`` (a non-browser client) passes;
* a browser's ``Sec-Fetch-Site: same-origin`` (or ``none``) passes;
* an ``Origin`` equal to the server's own (scheme, host and port, from the request) passes;
* an ``Origin`` listed in ``allowed_origins`` passes; ``"*"`` lets every origin in;
* anything else, including ``Sec-Fetch-Site: cross-site`` or ``same-site``, gets 403.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Literal

from aiohttp import hdrs, web
from yarl import URL

__all__ = ["ALLOWED_ORIGINS_KEY", "SAME_ORIGIN_ONLY", "OriginPolicy", "AllowedOrigins"]

#: What ``allowed_origins`` takes: origins such as ``"https://example.com"`` or
#: ``"https://*.example.com"``, or ``"*"`` for any origin.
AllowedOrigins = Iterable[str] | Literal["*"]

_SEC_FETCH_SITE: Final = "Sec-Fetch-Site"
_TRUSTED_FETCH_SITES = frozenset({"same-origin", "none"})


@dataclass(frozen=True, slots=True)
class OriginPolicy:
    """Which cross-site origins may open connections; the server's own origin always may."""

    #: Allowed origins, normalised as ``scheme://host:port``.
    origins: frozenset[str] = frozenset()
    #: ``(scheme, ".example.com", port)`` for each ``scheme://*.example.com`` pattern.
    subdomains: tuple[tuple[str, str, int | None], ...] = ()
    allow_any: bool = False

    @classmethod
    def from_origins(cls, allowed: AllowedOrigins) -> OriginPolicy:
        """Check and normalise ``allowed_origins``; raise ``ValueError`` naming a bad one."""
        if allowed == "*":
            return cls(allow_any=True)
        if isinstance(allowed, str):
            raise TypeError(
                f'allowed_origins must be a list of origins or "*", got the string {allowed!r}'
            )
        origins: set[str] = set()
        subdomains: list[tuple[str, str, int | None]] = []
        allow_any = False
        for origin in allowed:
            if not isinstance(origin, str):
                raise TypeError(f"allowed_origins must contain strings, got {origin!r}")
            if origin == "*":
                allow_any = True
            elif origin == "null":
                origins.add("null")
            elif "://*." in origin:
                scheme, _, rest = origin.partition("://*.")
                url = _parse_origin(f"{scheme}://{rest}", origin)
                subdomains.append((url.scheme, f".{url.host}", url.port))
            else:
                origins.add(_key(_parse_origin(origin, origin)))
        return cls(frozenset(origins), tuple(subdomains), allow_any)

    def allows(self, origin: str) -> bool:
        """Tell whether ``origin`` (an ``Origin`` header's value) is in the allowed list."""
        if self.allow_any:
            return True
        if origin == "null":
            return "null" in self.origins
        try:
            url = URL(origin)
        except ValueError:
            return False
        if not url.scheme or not url.host:
            return False
        if _key(url) in self.origins:
            return True
        host = url.host
        return any(
            url.scheme == scheme and host.endswith(suffix) and url.port == port
            for scheme, suffix, port in self.subdomains
        )

    def refusal(self, request: web.BaseRequest) -> str | None:
        """Why ``request`` must be refused, or ``None`` when it may connect."""
        if self.allow_any:
            return None
        headers = request.headers
        fetch_site = headers.get(_SEC_FETCH_SITE)
        if fetch_site in _TRUSTED_FETCH_SITES:
            return None
        origin = headers.get(hdrs.ORIGIN)
        if origin is None:
            if fetch_site is None:
                return None  # Not a browser: the origin check does not concern it.
            return f"Cross-site WebSocket request ({_SEC_FETCH_SITE}: {fetch_site}) refused"
        if self.allows(origin):
            return None
        # Without Fetch Metadata (older browsers), compare with the server's own origin.
        if fetch_site is None and _is_same_origin(origin, request):
            return None
        return f"Origin {origin} is not allowed to open a WebSocket here"


#: The policy when neither the route nor :func:`aioendpoints.setup` allows other origins.
SAME_ORIGIN_ONLY: Final = OriginPolicy()

#: The application's default ``allowed_origins``, set by :func:`aioendpoints.setup`.
ALLOWED_ORIGINS_KEY: Final = web.AppKey("aioendpoints.allowed_origins", OriginPolicy)


def _parse_origin(value: str, original: str) -> URL:
    try:
        url = URL(value)
    except ValueError:
        url = None
    if (
        url is None
        or not url.scheme
        or not url.host
        or url.path not in ("", "/")
        or url.query_string
        or url.fragment
        or url.user is not None
    ):
        raise ValueError(
            f"allowed_origins entries must look like 'https://example.com' "
            f"(scheme, host and optional port, no path), got {original!r}"
        )
    return url


def _key(url: URL) -> str:
    return f"{url.scheme}://{url.host}:{url.port}"


def _is_same_origin(origin: str, request: web.BaseRequest) -> bool:
    try:
        own = URL.build(scheme=request.scheme, authority=request.host)
        theirs = URL(origin)
    except ValueError:
        return False
    return theirs.scheme == own.scheme and theirs.host == own.host and theirs.port == own.port
