"""What the application's connections did: totals per route.

:func:`aioendpoints.setup` installs a :class:`Monitor` as the application's connection
observer when metrics or tracing are on. Per route pattern, it counts how many connections
opened, how they closed and how many handshakes were refused (the metrics). It keeps
nothing per connection: the open ones are in the application's registry (the admin API's
snapshots read them there). With ``count_messages`` each connection counts its own
messages and bytes (:meth:`WebSocket.count_messages`: plain attributes, no lock, no
lookup), and the counts of the connections that ended are added to their route's totals.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Final

from aiohttp import web

from .close_codes import CloseCode
from .observers import ConnectionObserver, ReceiveMessage, SendFrame, route_of

if TYPE_CHECKING:
    from .websocket import WebSocket

__all__ = ["MONITOR_KEY", "Monitor", "RouteTotals"]


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
        #: Messages and bytes of the connections that have ended (the open ones count
        #: their own).
        self.messages_received = 0
        self.bytes_received = 0
        self.messages_sent = 0
        self.bytes_sent = 0


class Monitor(ConnectionObserver):
    """Keeps totals per route; has each connection count its messages when asked to."""

    def __init__(self, *, count_messages: bool = False) -> None:
        #: Whether each message is counted (``setup(app, metrics=True)`` turns it on).
        self.count_messages = count_messages
        #: Totals per route pattern.
        self.routes: dict[str, RouteTotals] = {}
        # The same totals by aiohttp route, so that each connection's are found with one
        # lookup rather than by working out its route's pattern twice.
        self._by_route: dict[web.AbstractRoute, RouteTotals] = {}

    def totals(self, route: str) -> RouteTotals:
        """The totals of ``route``, created empty on first use."""
        totals = self.routes.get(route)
        if totals is None:
            totals = self.routes[route] = RouteTotals()
        return totals

    def _totals_of(self, websocket: WebSocket) -> RouteTotals:
        request = websocket.request
        route = request.match_info.route
        totals = self._by_route.get(route)
        if totals is None:
            totals = self._by_route[route] = self.totals(route_of(request))
        return totals

    def refused(self, request: web.Request, status: int) -> None:
        """Count a refused handshake."""
        self.totals(route_of(request)).refusals[status] += 1

    def opened(
        self, websocket: WebSocket, receive: ReceiveMessage, send: SendFrame
    ) -> tuple[ReceiveMessage, SendFrame]:
        """Count a new connection; have it count its messages when they are counted."""
        totals = self._totals_of(websocket)
        totals.connections += 1
        totals.open += 1
        if self.count_messages:
            websocket.count_messages()
        return receive, send

    def closed(self, websocket: WebSocket) -> None:
        """Fold an ended connection into its route's totals."""
        totals = self._totals_of(websocket)
        totals.open -= 1
        code = websocket.close_code or CloseCode.ABNORMAL_CLOSURE
        totals.disconnects[code] += 1
        counts = websocket.message_counts
        if counts is not None:
            totals.messages_received += counts.messages_received
            totals.bytes_received += counts.bytes_received
            totals.messages_sent += counts.messages_sent
            totals.bytes_sent += counts.bytes_sent


#: The application's :class:`Monitor`, installed by :func:`aioendpoints.setup`.
MONITOR_KEY: Final = web.AppKey("aioendpoints.monitor", Monitor)
