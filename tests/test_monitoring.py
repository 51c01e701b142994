"""The monitor that setup() installs: a record per connection, no cost per message unless asked."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry

import aioendpoints
from aioendpoints import WebSocket, WebSocketRoutes
from aioendpoints.metrics import METRICS_KEY
from aioendpoints.monitoring import MONITOR_KEY

from .helpers import eventually


def echo_app(**setup_options: Any) -> tuple[web.Application, list[tuple[Any, Any]]]:
    """An echo app that notes, per connection, the callables its messages go through."""
    seen: list[tuple[Any, Any]] = []
    routes = WebSocketRoutes()

    @routes.websocket_route("/echo", send_timeout=None)
    async def echo(ws: WebSocket) -> None:
        await ws.accept()
        assert ws.response is not None
        seen.append((ws._receive_message == ws.response.receive, ws._send_frame))
        async for message in ws:
            await ws.send(message)

    app = web.Application()
    aioendpoints.setup(app, **setup_options)
    app.add_routes(routes)
    return app, seen


async def test_without_metrics_messages_go_straight_to_aiohttp(aiohttp_client: Any) -> None:
    """Metrics off: the connection receives and sends through aiohttp's own methods."""
    app, seen = echo_app()
    client = await aiohttp_client(app)
    ws = await client.ws_connect("/echo")
    await ws.send_str("hi")
    assert await ws.receive_str(timeout=5) == "hi"
    ((receives_directly, send_frame),) = seen
    assert receives_directly
    assert getattr(send_frame, "__self__", None) is not None  # the response's bound method
    record = next(iter(app[MONITOR_KEY].records.values()))
    assert (record.messages_received, record.messages_sent) == (0, 0)
    await ws.close()


async def test_with_metrics_each_connection_counts_its_messages(aiohttp_client: Any) -> None:
    """Metrics on: each message in and out is counted in the connection's record."""
    app, seen = echo_app(metrics=True)
    client = await aiohttp_client(app)
    ws = await client.ws_connect("/echo")
    for text in ("one", "two"):
        await ws.send_str(text)
        assert await ws.receive_str(timeout=5) == text
    ((receives_directly, _),) = seen
    assert not receives_directly
    record = next(iter(app[MONITOR_KEY].records.values()))
    assert (record.messages_received, record.bytes_received) == (2, 6)
    assert (record.messages_sent, record.bytes_sent) == (2, 6)
    await ws.close()
    await eventually(lambda: not app[MONITOR_KEY].records)
    totals = app[MONITOR_KEY].routes["/echo"]
    assert (totals.connections, totals.open, dict(totals.disconnects)) == (1, 0, {1000: 1})


def test_metrics_go_into_the_registry_given() -> None:
    """setup(app, metrics=registry) registers the metrics in the user's own registry."""
    registry = CollectorRegistry()
    app = web.Application()
    aioendpoints.setup(app, metrics=registry)
    assert app[METRICS_KEY] is registry
    assert registry.get_sample_value("aioendpoints_published_total") == 0


def test_optional_dependencies_stay_unimported_when_unused() -> None:
    """A default setup() imports neither prometheus-client nor OpenTelemetry."""
    code = (
        "import sys; from aiohttp import web; import aioendpoints; "
        "aioendpoints.setup(web.Application()); "
        "roots = {m.split('.')[0] for m in sys.modules}; "
        "print(sorted(roots & {'prometheus_client', 'opentelemetry'}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
