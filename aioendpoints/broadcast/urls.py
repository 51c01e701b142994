"""Broadcast URLs: which backend ``memory://`` or ``redis://host:port/db`` names.

Apart from :mod:`.backend`, so that the backends, which build on it, are imported only
here and only for their own URL.
"""

from __future__ import annotations

from .backend import BroadcastBackend

__all__ = ["backend_for_url"]


def backend_for_url(url: str) -> BroadcastBackend:
    """Return the backend that ``url`` names: ``memory://`` or ``redis://host:port/db``.

    ``rediss://`` (TLS) and ``unix://`` (a Redis socket) work too. The Redis client is
    only imported for a Redis URL, so ``memory://`` needs no extra package.
    """
    if not isinstance(url, str):
        raise TypeError(f"broadcast must be a URL string or a Broadcast, got {url!r}")
    scheme, separator, _ = url.partition("://")
    if not separator:
        raise ValueError(
            f"broadcast URL must look like 'memory://' or 'redis://host:port/db', got {url!r}"
        )
    if scheme == "memory":
        from .memory import MemoryBackend

        return MemoryBackend()
    if scheme in ("redis", "rediss", "unix"):
        from .redis import RedisBackend

        return RedisBackend(url)
    raise ValueError(
        f"unknown broadcast backend {scheme!r} in {url!r}: use 'memory://' or 'redis://host:port/db'"
    )
