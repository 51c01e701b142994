"""The keepalive: finds dead peers with pings, for a flag set per received chunk.

aiohttp's own heartbeat restarts a timer for every chunk it receives (a ``call_soon``, a
clock read and a timer cancelled per chunk), which costs more than the rest of a message's
trip through aioendpoints. This keepalive does the same job the way python-websockets
does, cheaper:

* a :class:`Keepalive` stands between the transport and aiohttp's protocol
  (:meth:`asyncio.BaseTransport.set_protocol`, public asyncio API): for each chunk it sets
  a flag and hands the chunk on; it uses nothing private of aiohttp;
* one :class:`_Sweeper` per event loop and interval visits all its connections every half
  ``heartbeat``: a connection that received anything since the last visit is left alone;
  one that did not is pinged; one still silent at the next visit is aborted (1006).

Any data counts as a sign of life, not only the pong. An idle connection gets one ping per
``heartbeat``, as with aiohttp; a peer that goes silent is dropped between 1 and 1.5
``heartbeat`` after the last data it sent (aiohttp: 1.5), and never sooner than
``heartbeat / 2`` after a ping.

When the transport's protocol is not aiohttp's own (some other layer already stands
between them), :func:`can_watch` says so and the connection falls back to aiohttp's
heartbeat, with a warning in the log.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

__all__ = ["Keepalive", "can_watch", "stop_watching", "watch"]

logger = logging.getLogger("aioendpoints")

#: A ping frame from the server: FIN + opcode 0x9, unmasked, empty payload (RFC 6455 §5.5.2).
PING_FRAME = b"\x89\x00"

_warned = False


def can_watch(request: web.BaseRequest) -> bool:
    """Tell whether :func:`watch` can watch ``request``'s connection; warn once if not."""
    transport = request.transport
    protocol = request.protocol
    if (
        transport is not None
        and transport.get_protocol() is protocol
        and isinstance(protocol, asyncio.Protocol)
    ):
        return True
    global _warned
    if not _warned:
        _warned = True
        logger.warning(
            "The keepalive cannot watch the transport %r; using aiohttp's heartbeat instead",
            transport,
        )
    return False


def watch(request: web.BaseRequest, interval: float) -> Keepalive:
    """Start the keepalive on ``request``'s upgraded connection; ping every ``interval``.

    Call it after the handshake, and only when :func:`can_watch` said yes.
    """
    transport = request.transport
    assert transport is not None
    loop = asyncio.get_running_loop()
    sweeper = _sweepers.get((loop, interval))
    if sweeper is None:
        sweeper = _sweepers[loop, interval] = _Sweeper(loop, interval)
    keepalive = Keepalive(transport, sweeper)
    transport.set_protocol(keepalive)
    sweeper.add(keepalive)
    return keepalive


# A connection's state between two visits of its sweeper.
_QUIET, _SEEN, _PINGED = 0, 1, 2


def stop_watching(request: web.BaseRequest) -> None:
    """Stop the keepalive of ``request``'s connection, if it has one: no pings after a close."""
    transport = request.transport
    if isinstance(transport, asyncio.BaseTransport):
        keepalive = transport.get_protocol()
        if isinstance(keepalive, Keepalive):
            keepalive.stop()


class Keepalive(asyncio.Protocol):
    """Stands between a connection's transport and aiohttp's protocol, noting each chunk."""

    __slots__ = ("_index", "_protocol", "_state", "_sweeper", "_transport")

    def __init__(self, transport: asyncio.Transport, sweeper: _Sweeper) -> None:
        # can_watch() made sure that it is an asyncio.Protocol.
        self._protocol: asyncio.Protocol = transport.get_protocol()  # type: ignore[assignment]
        self._transport = transport
        self._sweeper: _Sweeper | None = sweeper
        #: Where the sweeper keeps this connection.
        self._index = 0
        # The handshake itself was a sign of life.
        self._state = _SEEN

    def data_received(self, data: bytes) -> None:
        """Note that the peer is alive and hand the chunk to aiohttp."""
        # This line is the keepalive's whole cost per received chunk.
        self._state = _SEEN
        self._protocol.data_received(data)

    def eof_received(self) -> bool | None:
        """Hand the end of the peer's stream to aiohttp."""
        return self._protocol.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        """Stop watching, and tell aiohttp."""
        self.stop()
        self._protocol.connection_lost(exc)

    def pause_writing(self) -> None:
        """Hand the transport's flow control to aiohttp."""
        self._protocol.pause_writing()

    def resume_writing(self) -> None:
        """Hand the transport's flow control to aiohttp."""
        self._protocol.resume_writing()

    def stop(self) -> None:
        """Stop pinging: the connection is closing or closed. Chunks still reach aiohttp."""
        sweeper = self._sweeper
        if sweeper is not None:
            self._sweeper = None
            sweeper.discard(self)

    @property
    def watching(self) -> bool:
        """Whether the connection is still watched."""
        return self._sweeper is not None


class _Sweeper:
    """Visits the connections of one loop and interval, every half interval."""

    __slots__ = ("_key", "_loop", "_members", "_period", "_timer")

    def __init__(self, loop: asyncio.AbstractEventLoop, interval: float) -> None:
        self._loop = loop
        self._period = interval / 2
        self._key = (loop, interval)
        # A list, each member knowing its index: 8 bytes a connection where a set takes ~60.
        self._members: list[Keepalive] = []
        self._timer: asyncio.TimerHandle | None = None

    def add(self, keepalive: Keepalive) -> None:
        members = self._members
        keepalive._index = len(members)
        members.append(keepalive)
        if self._timer is None:
            self._timer = self._loop.call_later(self._period, self._visit)

    def discard(self, keepalive: Keepalive) -> None:
        members = self._members
        index = keepalive._index
        if index >= len(members) or members[index] is not keepalive:
            return
        last = members.pop()
        if last is not keepalive:
            members[index] = last
            last._index = index
        if not members:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if _sweepers.get(self._key) is self:
                del _sweepers[self._key]

    def _visit(self) -> None:
        self._timer = self._loop.call_later(self._period, self._visit)
        for keepalive in tuple(self._members):
            state = keepalive._state
            if state == _SEEN:
                keepalive._state = _QUIET
                continue
            transport = keepalive._transport
            if state == _PINGED:
                # Silent since the last ping: the peer is gone. Abort rather than close, since
                # a dead peer would never drain what is still queued for it.
                keepalive.stop()
                transport.abort()
                continue
            keepalive._state = _PINGED
            if not transport.is_closing():
                # A ping is a whole control frame, and aiohttp writes each frame without
                # yielding to the loop, so this never lands inside one of aiohttp's frames.
                transport.write(PING_FRAME)


#: The sweepers that have connections to watch, by event loop and interval.
_sweepers: dict[tuple[asyncio.AbstractEventLoop, float], _Sweeper] = {}
