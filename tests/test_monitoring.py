"""The monitor that setup() installs: a record per connection, no cost per message unless asked."""

from __future__ import annotations

import logging
import subprocess
import sys
from typing import Any

import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

import aioendpoints
from aioendpoints import WebSocket, WebSocketRoutes
from aioendpoints.metrics import METRICS_KEY
from aioendpoints.monitoring import MONITOR_KEY
from aioendpoints.observers import OBSERVER_KEY

from .helpers import eventually


def echo_app(**setup_options: Any) -> tuple[web.Application, list[tuple[WebSocket, bool, bool]]]:
    """An echo app that notes, per connection, the callables its messages go through."""
    seen: list[tuple[WebSocket, bool, bool]] = []
    routes = WebSocketRoutes()

    @routes.websocket_route("/echo", send_timeout=None)
    async def echo(ws: WebSocket) -> None:
        await ws.accept()
        assert ws.response is not None
        receives_directly = (ws._receive_message, ws._receive_from) == (
            web.WebSocketResponse.receive,
            ws.response,
        )
        sends_directly = (ws._send_frame, ws._send_to) == (
            web.WebSocketResponse.send_frame,
            ws.response,
        )
        seen.append((ws, receives_directly, sends_directly))
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
    ((connection, receives_directly, sends_directly),) = seen
    assert receives_directly
    assert sends_directly
    assert connection.message_counts is None
    await ws.close()


async def test_without_metrics_or_tracing_no_observer_is_installed(
    aiohttp_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """setup() without metrics or tracing installs no observer (none is called per
    handshake); the debug lines of an opened and a closed connection are still logged."""
    caplog.set_level(logging.DEBUG, "aioendpoints")
    app, _ = echo_app()
    assert OBSERVER_KEY not in app
    assert MONITOR_KEY not in app
    client = await aiohttp_client(app)
    ws = await client.ws_connect("/echo")
    await ws.send_str("one")
    assert await ws.receive_str(timeout=5) == "one"
    await ws.close()
    await eventually(lambda: any("closed with" in r.getMessage() for r in caplog.records))
    messages = [r.getMessage() for r in caplog.records if r.name == "aioendpoints"]
    assert messages[0].startswith("WebSocket /echo opened from ")
    assert messages[-1] == "WebSocket closed with 1000 ''"


async def test_with_metrics_each_connection_counts_its_messages(aiohttp_client: Any) -> None:
    """Metrics on: each message in and out is counted by the connection, with no wrapper."""
    app, seen = echo_app(metrics=True)
    client = await aiohttp_client(app)
    ws = await client.ws_connect("/echo")
    for text in ("one", "two"):
        await ws.send_str(text)
        assert await ws.receive_str(timeout=5) == text
    ((connection, receives_directly, sends_directly),) = seen
    assert receives_directly
    assert sends_directly
    counts = connection.message_counts
    assert counts is not None
    assert (counts.messages_received, counts.bytes_received) == (2, 6)
    assert (counts.messages_sent, counts.bytes_sent) == (2, 6)
    await ws.close()
    totals = app[MONITOR_KEY].routes["/echo"]
    await eventually(lambda: totals.open == 0)
    assert (totals.connections, dict(totals.disconnects)) == (1, {1000: 1})
    assert (totals.messages_received, totals.bytes_received) == (2, 6)
    assert (totals.messages_sent, totals.bytes_sent) == (2, 6)


async def test_every_receive_and_send_method_counts(aiohttp_client: Any) -> None:
    """Each receive*() and send*() method, and async for, counts its message and its bytes."""
    counted: list[tuple[int, int, int, int]] = []
    routes = WebSocketRoutes()

    @routes.websocket_route("/all", value_type="json")
    async def every_method(ws: WebSocket) -> None:
        await ws.accept()
        counts = ws.message_counts
        assert counts is not None

        def note() -> None:
            counted.append(
                (
                    counts.messages_received,
                    counts.bytes_received,
                    counts.messages_sent,
                    counts.bytes_sent,
                )
            )

        await ws.receive()  # [1]: 3 bytes
        note()
        await ws.receive_text()  # "é": 2 bytes in UTF-8
        note()
        await ws.receive_bytes()  # 4 bytes
        note()
        await ws.receive_json()  # {}: 2 bytes
        note()
        await ws.receive_message()  # 5 bytes
        note()
        async for _ in ws:  # "x": 3 bytes
            note()
            break
        await ws.send([1])  # 3 bytes
        note()
        await ws.send_text("é")  # 2 bytes
        note()
        await ws.send_bytes(b"abcd")  # 4 bytes
        note()
        await ws.send_json({})  # 2 bytes
        note()
        await ws.receive_text()

    app = web.Application()
    aioendpoints.setup(app, metrics=True)
    app.add_routes(routes)
    client = await aiohttp_client(app)
    ws = await client.ws_connect("/all")
    await ws.send_str("[1]")
    await ws.send_str("é")
    await ws.send_bytes(b"abcd")
    await ws.send_str("{}")
    await ws.send_bytes(b"12345")
    await ws.send_str('"x"')
    for _ in range(4):
        await ws.receive(timeout=5)
    await ws.send_str("end")
    await eventually(lambda: len(counted) == 10)
    assert counted == [
        (1, 3, 0, 0),
        (2, 5, 0, 0),
        (3, 9, 0, 0),
        (4, 11, 0, 0),
        (5, 16, 0, 0),
        (6, 19, 0, 0),
        (6, 19, 1, 3),
        (6, 19, 2, 5),
        (6, 19, 3, 9),
        (6, 19, 4, 11),
    ]
    await ws.close()


async def test_the_monitor_keeps_nothing_per_connection(aiohttp_client: Any) -> None:
    """The monitor's state is its totals per route (by pattern, and the same by aiohttp
    route), however many connections are open."""
    app, seen = echo_app(metrics=True)
    client = await aiohttp_client(app)
    sockets = [await client.ws_connect("/echo") for _ in range(3)]
    await eventually(lambda: len(seen) == 3)
    monitor = app[MONITOR_KEY]
    assert vars(monitor).keys() == {"count_messages", "routes", "_by_route"}
    assert list(monitor.routes) == ["/echo"]
    assert list(monitor._by_route.values()) == [monitor.routes["/echo"]]
    assert monitor.routes["/echo"].open == 3
    for ws in sockets:
        await ws.close()


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
