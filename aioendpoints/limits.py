"""The mechanisms behind the route limits: message rate, the outgoing buffer, connection caps.

Every limit is a route option, checked in ``options.py``; the defaults (see
``docs/topics/security.rst``) keep a server safe from dead peers and slow readers without getting
in the way of ordinary applications.
"""

from __future__ import annotations

import asyncio
import functools
import struct
from collections.abc import Awaitable, Callable
from typing import NamedTuple

from aiohttp import web

from .close_codes import CloseCode

__all__ = [
    "DEFAULT_HEARTBEAT",
    "DEFAULT_SEND_TIMEOUT",
    "DEFAULT_WRITE_BUFFER_LIMIT",
    "ConnectionCounter",
    "RateLimit",
    "SendGuard",
    "send_guard",
    "TokenBucket",
    "abort_later",
    "drop_transport",
    "room_for",
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


@functools.cache
def _marks(limit: int) -> tuple[int, int]:
    """The low-water mark and the room a send may take, for a buffer ``limit``.

    Once a slow reader has filled the buffer, aiohttp's writer stays paused until it is
    back under the low-water mark, not merely under the limit: only below that mark is a
    send sure not to wait. A frame header and deflate's worst case add a little to the
    payload. Cached, so that the connections of a route share these ints rather than each
    holding two of its own.
    """
    low = limit // 4
    return low, max(low - 1024, 0)


class SendGuard:
    """Bounds a connection's outgoing buffer, and how long a send may wait for the reader.

    Sends that leave the buffer below its low-water mark cannot block, and go straight
    through; only the others are timed, so a fast reader costs one size check per send.
    One guard serves every connection with the same limits (see :func:`send_guard`).
    """

    __slots__ = ("_limit", "_low", "_room", "_timeout")

    def __init__(self, limit: int, timeout: float) -> None:
        self._limit = limit
        self._low, self._room = _marks(limit)
        self._timeout = timeout

    def watch(self, transport: asyncio.Transport) -> None:
        """Set ``transport``'s buffer limits to those of the guard."""
        transport.set_write_buffer_limits(high=self._limit, low=self._low)

    def fits(self, transport: asyncio.Transport, size: int) -> bool:
        """Tell whether a payload of ``size`` bytes can be sent without waiting for the reader."""
        return transport.get_write_buffer_size() + size < self._room

    async def send(self, sending: Awaitable[None]) -> bool:
        """Await ``sending``; false when the reader did not make room within the timeout."""
        try:
            async with asyncio.timeout(self._timeout):
                await sending
        except TimeoutError:
            return False
        return True


@functools.cache
def send_guard(limit: int, timeout: float) -> SendGuard:
    """The guard of a buffer ``limit`` and a send ``timeout``: one for all their connections."""
    return SendGuard(limit, timeout)


def room_for(transport: asyncio.Transport, size: int) -> bool:
    """Tell whether ``size`` more bytes leave ``transport``'s buffer under its low-water mark.

    Below that mark aiohttp's writer is not paused, so a write of that size cannot wait.
    """
    low, _ = transport.get_write_buffer_limits()
    return transport.get_write_buffer_size() + size <= low


def drop_transport(transport: asyncio.Transport, code: int, reason: bytes, grace: float) -> None:
    """Queue a close frame behind the unread data, and drop the connection after ``grace``.

    aiohttp's own close would wait for room in the buffer, which a slow reader does not
    make; a reader that catches up within ``grace`` still gets the close frame.
    """
    if transport.is_closing():
        abort_later(transport, grace)
        return
    payload = struct.pack("!H", code) + reason
    transport.write(struct.pack("!BB", 0x88, len(payload)) + payload)
    transport.close()
    abort_later(transport, grace)


def abort_later(transport: asyncio.Transport, grace: float) -> None:
    """Abort ``transport`` after ``grace`` seconds unless it has closed by then.

    A closing transport waits for its buffer to be flushed; a peer that reads nothing
    would keep its socket open forever.
    """
    if transport.get_write_buffer_size():
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


#: The close codes the limits use.
IDLE_TIMEOUT_CLOSE = (CloseCode.GOING_AWAY, "Idle timeout")
AUTH_TIMEOUT_CLOSE = (CloseCode.POLICY_VIOLATION, "Authentication timeout")
RATE_LIMIT_CLOSE = (CloseCode.POLICY_VIOLATION, "Rate limit exceeded")
SEND_TIMEOUT_CLOSE = (CloseCode.POLICY_VIOLATION, "Send timeout: reader too slow")
