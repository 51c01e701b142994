"""Prometheus metrics of connections, messages and groups (the ``metrics`` extra).

``aioendpoints.setup(app, metrics=True)`` records them, ``metrics_path="/metrics"`` also
serves them. Nothing is counted in prometheus-client's locked values on the message path:
connections count their messages in plain attributes (see :mod:`aioendpoints.monitoring`)
and this collector adds them up when Prometheus scrapes: the totals of the connections that
ended, and the counts of the open ones.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from aiohttp import web

from .broadcast.groups import Broadcast
from .monitoring import Monitor
from .registry import CONNECTIONS_KEY, ConnectionRegistry

try:
    from prometheus_client import CollectorRegistry, Histogram
    from prometheus_client.aiohttp import make_aiohttp_handler
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
    from prometheus_client.registry import Collector
except ImportError as error:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "aioendpoints' metrics need prometheus-client: pip install 'aioendpoints[metrics]'"
    ) from error

__all__ = ["METRICS_KEY", "ConnectionMetrics", "install_metrics"]

#: The Prometheus registry that holds an application's metrics.
METRICS_KEY: Final = web.AppKey("aioendpoints.metrics", CollectorRegistry)

#: Buckets of ``aioendpoints_broadcast_lag_seconds``: 0.5 ms to 5 s.
LAG_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class ConnectionMetrics(Collector):
    """Reads the monitor's totals and the groups' counts each time Prometheus scrapes."""

    def __init__(
        self, monitor: Monitor, broadcast: Broadcast | None, connections: ConnectionRegistry
    ) -> None:
        self._monitor = monitor
        self._broadcast = broadcast
        self._connections = connections

    def collect(self) -> Iterable[Metric]:
        """Every metric with the values of this moment."""
        yield from self._connection_metrics()
        yield from self._message_metrics()
        yield from self._group_metrics()

    def _connection_metrics(self) -> Iterable[Metric]:
        routes = self._monitor.routes
        open_now = GaugeMetricFamily(
            "aioendpoints_connections", "Open WebSocket connections.", labels=["route"]
        )
        # "unknown" rather than "counter": a counter family would be named
        # aioendpoints_connections too, the gauge's name.
        opened = Metric(
            "aioendpoints_connections_total",
            "WebSocket connections accepted (a counter).",
            "unknown",
        )
        disconnects = CounterMetricFamily(
            "aioendpoints_disconnects_total",
            "WebSocket connections ended, by close code.",
            labels=["route", "code"],
        )
        refusals = CounterMetricFamily(
            "aioendpoints_handshake_refusals_total",
            "WebSocket handshakes refused, by HTTP status.",
            labels=["route", "status"],
        )
        for route, totals in routes.items():
            open_now.add_metric([route], totals.open)
            opened.add_sample(
                "aioendpoints_connections_total", {"route": route}, totals.connections
            )
            for code, count in sorted(totals.disconnects.items()):
                disconnects.add_metric([route, str(code)], count)
            for status, count in sorted(totals.refusals.items()):
                refusals.add_metric([route, str(status)], count)
        yield from (open_now, opened, disconnects, refusals)

    def _message_metrics(self) -> Iterable[Metric]:
        names = ("messages_received", "messages_sent", "bytes_received", "bytes_sent")
        sums = {
            route: [getattr(totals, name) for name in names]
            for route, totals in self._monitor.routes.items()
        }
        worst = dict.fromkeys(sums, 0)
        for websocket in self._connections:
            route = websocket.route
            if route not in sums:  # its opening was not seen by this monitor
                continue
            counted = websocket.message_counts
            if counted is not None:
                route_sums = sums[route]
                route_sums[0] += counted.messages_received
                route_sums[1] += counted.messages_sent
                route_sums[2] += counted.bytes_received
                route_sums[3] += counted.bytes_sent
            transport = websocket.request.transport
            if transport is not None:
                worst[route] = max(worst[route], transport.get_write_buffer_size())
        families = [
            CounterMetricFamily(
                "aioendpoints_messages_received_total", "Messages received.", labels=["route"]
            ),
            CounterMetricFamily(
                "aioendpoints_messages_sent_total",
                "Messages sent by the connection's own send calls (not group deliveries).",
                labels=["route"],
            ),
            CounterMetricFamily(
                "aioendpoints_received_bytes_total",
                "Payload bytes received (text as UTF-8).",
                labels=["route"],
            ),
            CounterMetricFamily(
                "aioendpoints_sent_bytes_total",
                "Payload bytes sent, before compression.",
                labels=["route"],
            ),
        ]
        buffers = GaugeMetricFamily(
            "aioendpoints_send_buffer_bytes",
            "The largest amount of unsent data of one open connection.",
            labels=["route"],
        )
        for route, counts in sums.items():
            for family, count in zip(families, counts, strict=True):
                family.add_metric([route], count)
            buffers.add_metric([route], worst[route])
        yield from families
        yield buffers

    def _group_metrics(self) -> Iterable[Metric]:
        hub = self._broadcast
        if hub is None:
            return
        yield GaugeMetricFamily(
            "aioendpoints_group_members",
            "Group memberships of this process's connections, over all groups.",
            value=sum(len(hub.members(group)) for group in hub.groups),
        )
        yield CounterMetricFamily(
            "aioendpoints_published_total",
            "Messages published to groups from this process.",
            value=hub.published,
        )
        yield CounterMetricFamily(
            "aioendpoints_slow_members_closed_total",
            "Group members handed to the slow-member policy (closed, by default).",
            value=hub.slow_members,
        )


def install_metrics(
    app: web.Application,
    monitor: Monitor,
    broadcast: Broadcast | None,
    registry: CollectorRegistry | None = None,
    path: str | None = None,
) -> CollectorRegistry:
    """Register the metrics in ``registry`` (a new one by default); serve them at ``path``."""
    registry = registry if registry is not None else CollectorRegistry()
    registry.register(ConnectionMetrics(monitor, broadcast, app[CONNECTIONS_KEY]))
    lag = Histogram(
        "aioendpoints_broadcast_lag_seconds",
        "Seconds from publishing in another process to delivery in this one (Redis).",
        buckets=LAG_BUCKETS,
        registry=registry,
    )
    if broadcast is not None:
        broadcast.backend.on_lag = lag.observe
    app[METRICS_KEY] = registry
    if path is not None:
        app.router.add_get(path, make_aiohttp_handler(registry))
    return registry
