"""Per-route limits: timeouts, the outgoing buffer, message rate and connection caps.

Every limit is a route option; the defaults (see ``docs/topics/security.rst``) keep a server safe
from dead peers and slow readers without getting in the way of ordinary applications.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from aiohttp import web

from .close_codes import CloseCode

__all__ = [
    "DEFAULT_HEARTBEAT",
    "DEFAULT_SEND_TIMEOUT",
    "DEFAULT_WRITE_BUFFER_LIMIT",
    "ConnectionCounter",
    "Limits",
    "RateLimit",
    "SendGuard",
    "TokenBucket",
]

#: Seconds between pings; a peer that has not answered within half of it more is closed.
DEFAULT_HEARTBEAT = 20.0
#: Seconds a send may wait for a slow reader before the connection is closed with 1008.
DEFAULT_SEND_TIMEOUT = 10.0
#: Bytes of unsent data a connection may queue before sends wait for the reader.
DEFAULT_WRITE_BUFFER_LIMIT = 256 * 1024


class RateLimit(NamedTuple):
    """A message rate limit: ``per_second`` on average, in bursts of up to ``burst``."""

    per_second: float
    burst: int


@dataclass(frozen=True, slots=True)
class Limits:
    """The checked limits of one route."""

    idle_timeout: float | None = None
    auth_timeout: float | None = None
    send_timeout: float | None = DEFAULT_SEND_TIMEOUT
    write_buffer_limit: int = DEFAULT_WRITE_BUFFER_LIMIT
    rate_limit: RateLimit | None = None
    max_connections: int | None = None
    max_connections_per_client: int | None = None

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> Limits:
        """Check the limit options present in ``options``; raise ``ValueError`` on bad ones."""
        settings: dict[str, Any] = {}
        for name in ("idle_timeout", "auth_timeout", "send_timeout"):
            if name in options:
                settings[name] = positive_or_none(name, options[name])
        if "write_buffer_limit" in options:
            settings["write_buffer_limit"] = _positive_int("write_buffer_limit", options)
        for name in ("max_connections", "max_connections_per_client"):
            if name in options and options[name] is not None:
                settings[name] = _positive_int(name, options)
        if options.get("rate_limit") is not None:
            settings["rate_limit"] = _rate_limit(options["rate_limit"])
        return cls(**settings)

    def counter(self) -> ConnectionCounter | None:
        """A connection counter for the route, or ``None`` when it has no connection cap."""
        if self.max_connections is None and self.max_connections_per_client is None:
            return None
        return ConnectionCounter(self.max_connections, self.max_connections_per_client)


class TokenBucket:
    """A token bucket: :meth:`take` is false once a peer sends faster than the limit."""

    __slots__ = ("_burst", "_clock", "_per_second", "_stamp", "_tokens")

    def __init__(self, limit: RateLimit, clock: Callable[[], float]) -> None:
        self._per_second = limit.per_second
        self._burst = float(limit.burst)
        self._clock = clock
        self._tokens = self._burst
        self._stamp = clock()

    def take(self) -> bool:
        """Take a token for one message; false when none is left."""
        now = self._clock()
        tokens = min(self._burst, self._tokens + (now - self._stamp) * self._per_second)
        self._stamp = now
        if tokens < 1.0:
            self._tokens = tokens
            return False
        self._tokens = tokens - 1.0
        return True


class SendGuard:
    """Bounds a connection's outgoing buffer, and how long a send may wait for the reader.

    Sends that cannot fill the buffer up to its limit cannot block, and go straight
    through; only the others are timed, so a fast reader costs one size check per send.
    """

    __slots__ = ("_headroom", "_timeout", "_transport")

    def __init__(self, transport: asyncio.Transport, limit: int, timeout: float) -> None:
        transport.set_write_buffer_limits(high=limit, low=limit // 4)
        self._transport = transport
        # A frame header and deflate's worst case add a little to the payload.
        self._headroom = limit - 1024
        self._timeout = timeout

    def fits(self, size: int) -> bool:
        """Tell whether a payload of ``size`` bytes can be sent without waiting for the reader."""
        return self._transport.get_write_buffer_size() + size < self._headroom

    async def send(self, sending: Awaitable[None]) -> bool:
        """Await ``sending``; false when the reader did not make room within the timeout."""
        try:
            async with asyncio.timeout(self._timeout):
                await sending
        except TimeoutError:
            return False
        return True

    def drop(self, code: int, reason: bytes, grace: float) -> None:
        """Queue a close frame behind the unread data, and drop the connection after ``grace``.

        aiohttp's own close would wait for room in the buffer, which a slow reader does not
        make; a reader that catches up within ``grace`` still gets the close frame.
        """
        transport = self._transport
        if transport.is_closing():
            return
        payload = struct.pack("!H", code) + reason
        transport.write(struct.pack("!BB", 0x88, len(payload)) + payload)
        transport.close()
        asyncio.get_running_loop().call_later(grace, transport.abort)


class ConnectionCounter:
    """Counts a route's open connections, in all and per client address."""

    __slots__ = ("_by_client", "_total", "max_connections", "max_connections_per_client")

    def __init__(self, max_connections: int | None, max_connections_per_client: int | None) -> None:
        self.max_connections = max_connections
        self.max_connections_per_client = max_connections_per_client
        self._total = 0
        self._by_client: dict[str | None, int] = {}

    def __len__(self) -> int:
        return self._total

    def admit(self, client: str | None) -> None:
        """Count a new connection from ``client``; raise HTTP 503 when over a cap."""
        if self.max_connections is not None and self._total >= self.max_connections:
            raise _unavailable("Too many WebSocket connections on this route")
        count = self._by_client.get(client, 0)
        cap = self.max_connections_per_client
        if cap is not None and count >= cap:
            raise _unavailable("Too many WebSocket connections from your address")
        self._by_client[client] = count + 1
        self._total += 1

    def release(self, client: str | None) -> None:
        """Forget a connection from ``client`` that has ended."""
        self._total -= 1
        count = self._by_client[client] - 1
        if count:
            self._by_client[client] = count
        else:
            del self._by_client[client]


def _unavailable(text: str) -> web.HTTPServiceUnavailable:
    return web.HTTPServiceUnavailable(text=text, headers={"Retry-After": "5"})


def positive_or_none(name: str, value: object) -> float | None:
    """Check a duration option: a positive number of seconds, or ``None`` for none."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ValueError(f"{name} must be a positive number or None, got {value!r}")
    return float(value)


def _positive_int(name: str, options: dict[str, Any]) -> int:
    value = options[name]
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def _rate_limit(value: object) -> RateLimit:
    if isinstance(value, tuple) and len(value) == 2:
        per_second, burst = value
        if (
            isinstance(per_second, int | float)
            and not isinstance(per_second, bool)
            and per_second > 0
            and isinstance(burst, int)
            and not isinstance(burst, bool)
            and burst >= 1
        ):
            return RateLimit(float(per_second), burst)
    raise ValueError(
        f"rate_limit must be RateLimit(per_second, burst) with per_second > 0 and "
        f"burst >= 1, got {value!r}"
    )


#: The close codes the limits use.
IDLE_TIMEOUT_CLOSE = (CloseCode.GOING_AWAY, "Idle timeout")
AUTH_TIMEOUT_CLOSE = (CloseCode.POLICY_VIOLATION, "Authentication timeout")
RATE_LIMIT_CLOSE = (CloseCode.POLICY_VIOLATION, "Rate limit exceeded")
SEND_TIMEOUT_CLOSE = (CloseCode.POLICY_VIOLATION, "Send timeout: reader too slow")
