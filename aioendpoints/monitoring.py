"""What the application's connections did: a record per open connection, totals per route.

:func:`aioendpoints.setup` installs a :class:`Monitor` as the application's connection
observer. It keeps one :class:`ConnectionRecord` per open connection (the admin API's
snapshots) and, per route pattern, how many connections opened, how they closed and how many
handshakes were refused (the metrics). With ``count_messages`` it also counts each
connection's messages and bytes, in plain attributes of its record: no lock, no lookup.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Final

from aiohttp import WSMessage, WSMsgType, web

from .close_codes import CloseCode
from .observers import ConnectionObserver, ReceiveMessage, SendFrame, route_of

if TYPE_CHECKING:
    from .websocket import WebSocket

__all__ = ["MONITOR_KEY", "ConnectionRecord", "Monitor", "RouteTotals"]

logger = logging.getLogger("aioendpoints")

_TEXT = WSMsgType.TEXT
_BINARY = WSMsgType.BINARY


class ConnectionRecord:
    """One open connection, as the monitor sees it."""

    __slots__ = (
        "bytes_received",
        "bytes_sent",
        "messages_received",
        "messages_sent",
        "opened_at",
        "route",
        "websocket",
    )

    def __init__(self, websocket: WebSocket, route: str) -> None:
        #: The connection.
        self.websocket = websocket
        #: The path pattern of its route.
        self.route = route
        #: When it was accepted, in seconds since the epoch.
        self.opened_at = time.time()
        #: Messages and payload bytes (text as UTF-8, before compression) in each direction;
        #: counted only when the monitor counts messages.
        self.messages_received = 0
        self.bytes_received = 0
        self.messages_sent = 0
        self.bytes_sent = 0


class RouteTotals:
    """What the connections of one route did, since the application started."""

    __slots__ = (
        "bytes_received",
        "bytes_sent",
        "connections",
        "disconnects",
        "messages_received",
        "messages_sent",
        "open",
        "refusals",
    )

    def __init__(self) -> None:
        #: Connections accepted.
        self.connections = 0
        #: Connections open now.
        self.open = 0
        #: Ended connections by close code.
        self.disconnects: Counter[int] = Counter()
        #: Refused handshakes by HTTP status.
        self.refusals: Counter[int] = Counter()
        #: Messages and bytes of the connections that have ended (the open ones are in
        #: their records).
        self.messages_received = 0
        self.bytes_received = 0
        self.messages_sent = 0
        self.bytes_sent = 0


class Monitor(ConnectionObserver):
    """Keeps a record of each open connection and totals per route.

    With ``count_messages``, each connection's messages go through a counting wrapper,
    chosen when it opens; without it, the per-message paths are left as they are.
    """

    def __init__(self, *, count_messages: bool = False) -> None:
        #: Whether each message is counted (``setup(app, metrics=True)`` turns it on).
        self.count_messages = count_messages
        #: The open connections.
        self.records: dict[WebSocket, ConnectionRecord] = {}
        #: Totals per route pattern.
        self.routes: dict[str, RouteTotals] = {}

    def totals(self, route: str) -> RouteTotals:
        """The totals of ``route``, created empty on first use."""
        totals = self.routes.get(route)
        if totals is None:
            totals = self.routes[route] = RouteTotals()
        return totals

    def refused(self, request: web.Request, status: int) -> None:
        """Count a refused handshake."""
        self.totals(route_of(request)).refusals[status] += 1

    def opened(
        self, websocket: WebSocket, receive: ReceiveMessage, send: SendFrame
    ) -> tuple[ReceiveMessage, SendFrame]:
        """Record a new connection; wrap its message paths when messages are counted."""
        record = ConnectionRecord(websocket, websocket.route)
        self.records[websocket] = record
        totals = self.totals(record.route)
        totals.connections += 1
        totals.open += 1
        if logger.isEnabledFor(logging.DEBUG):
            # Guarded: request.path caches itself in the request, 0.2 KiB a connection.
            logger.debug("WebSocket %s opened from %s", websocket.request.path, websocket.client)
        if not self.count_messages:
            return receive, send
        return _counting_receive(record, receive), _counting_send(record, send)

    def closed(self, websocket: WebSocket) -> None:
        """Fold an ended connection into its route's totals."""
        record = self.records.pop(websocket, None)
        if record is None:
            return
        totals = self.totals(record.route)
        totals.open -= 1
        code = websocket.close_code or CloseCode.ABNORMAL_CLOSURE
        totals.disconnects[code] += 1
        logger.debug("WebSocket closed with %d %r", code, websocket.close_reason)
        totals.messages_received += record.messages_received
        totals.bytes_received += record.bytes_received
        totals.messages_sent += record.messages_sent
        totals.bytes_sent += record.bytes_sent


#: The application's :class:`Monitor`, installed by :func:`aioendpoints.setup`.
MONITOR_KEY: Final = web.AppKey("aioendpoints.monitor", Monitor)


def _counting_receive(record: ConnectionRecord, receive: ReceiveMessage) -> ReceiveMessage:
    async def counted() -> WSMessage:
        message = await receive()
        kind = message.type
        if kind is _TEXT:
            data = message.data
            record.messages_received += 1
            # isascii() is a flag check: no encoding for the common case.
            record.bytes_received += len(data) if data.isascii() else len(data.encode())
        elif kind is _BINARY:
            record.messages_received += 1
            record.bytes_received += len(message.data)
        return message

    return counted


def _counting_send(record: ConnectionRecord, send: SendFrame) -> SendFrame:
    # A plain function returning the send's awaitable: no extra coroutine per message.
    def counted(payload: bytes | bytearray | memoryview, kind: WSMsgType) -> Awaitable[None]:
        record.messages_sent += 1
        record.bytes_sent += len(payload)
        return send(payload, kind)

    return counted
