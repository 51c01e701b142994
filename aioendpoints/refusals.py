"""HTTP error responses for refused handshakes."""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

__all__ = ["http_error"]


def _error_classes() -> dict[int, type[web.HTTPError]]:
    classes: dict[int, type[web.HTTPError]] = {}
    pending: list[type[web.HTTPException]] = [web.HTTPError]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        status = getattr(cls, "status_code", -1)
        if issubclass(cls, web.HTTPError) and status >= 400:
            classes.setdefault(status, cls)
    return classes


_ERROR_CLASSES = _error_classes()


def http_error(
    status: int, reason: str | None = None, headers: Mapping[str, str] | None = None
) -> web.HTTPError:
    """Build aiohttp's HTTP exception for an error ``status`` (4xx or 5xx)."""
    try:
        cls = _ERROR_CLASSES[status]
    except KeyError:
        raise ValueError(
            f"status must be an HTTP error status aiohttp knows, got {status!r}"
        ) from None
    # A few of aiohttp's errors take required arguments of their own.
    if cls is web.HTTPMethodNotAllowed:
        return cls("GET", ["GET"], text=reason, headers=headers)
    if cls is web.HTTPRequestEntityTooLarge:
        return cls(max_size=0, text=reason, headers=headers)
    if cls is web.HTTPUnavailableForLegalReasons:
        return cls(None, text=reason, headers=headers)
    return cls(text=reason, headers=headers)
