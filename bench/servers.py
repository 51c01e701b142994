"""The servers under test, one kind each, every kind serving the same three echo routes.

Run one with ``python -m bench.servers KIND``: it listens on a free loopback port, prints
``PORT <n>`` on stdout, echoes on ``/text``, ``/json`` and ``/bytes`` until SIGTERM or
SIGINT, then exits cleanly (so that callgrind writes its figures). The aiohttp and
aioendpoints kinds run bare (``AppRunner``, nothing else in the loop) or, with
``--deployed``, under ``web.run_app`` as they are deployed. On SIGUSR1 it calls
``getppid()`` (callgrind dumps its counters there) and prints ``MARK``.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import resource
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["KINDS", "SCENARIO_ONLY_KINDS", "Kind", "kind_available"]

Serve = Callable[[socket.socket, asyncio.Event], Awaitable[None]]


class Kind:
    """One server kind: a label for the table and the packages it needs."""

    __slots__ = ("label", "name", "requires")

    def __init__(self, name: str, label: str, requires: tuple[str, ...] = ()) -> None:
        self.name = name
        self.label = label
        self.requires = requires


#: Every kind, the baseline (raw aiohttp) first.
KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        Kind("aiohttp", "raw aiohttp"),
        Kind("aiohttp-heartbeat", "raw aiohttp, heartbeat=20"),
        Kind("function", "aioendpoints function view"),
        Kind("endpoint", "aioendpoints class endpoint"),
        Kind("function-stdlib-json", "aioendpoints function view, stdlib json"),
        Kind("function-no-heartbeat", "aioendpoints function view, heartbeat=None"),
        Kind("function-bare", "aioendpoints function view, no heartbeat, no send guard"),
        Kind("function-redis", "aioendpoints function view, redis://", ("redis",)),
        Kind("function-history", "aioendpoints function view, memory:// with history"),
        Kind(
            "function-redis-history",
            "aioendpoints function view, redis:// with history",
            ("redis",),
        ),
        Kind("function-metrics", "aioendpoints function view, metrics on", ("prometheus_client",)),
        Kind("function-auth", "aioendpoints function view, authenticate, expiring principal"),
        Kind("function-tracing", "aioendpoints function view, tracing on", ("opentelemetry.sdk",)),
        Kind(
            "function-tracing-messages",
            "aioendpoints function view, a span per message",
            ("opentelemetry.sdk",),
        ),
        Kind(
            "function-tracing-unsampled",
            "aioendpoints function view, spans per message asked, trace not sampled",
            ("opentelemetry.sdk",),
        ),
        Kind("starlette", "Starlette + uvicorn", ("starlette", "uvicorn", "websockets")),
        Kind("websockets", "python-websockets", ("websockets",)),
    )
}
BASELINE = "aiohttp"
#: Kinds that run only in the scenarios that name them in ``extra_kinds``: the stdlib json
#: fallback (JSON echo), the defaults switched off one by one (text and binary echo) and
#: the Redis broadcast backend (fan-out).
SCENARIO_ONLY_KINDS = frozenset(
    {
        "aiohttp-heartbeat",
        "function-stdlib-json",
        "function-no-heartbeat",
        "function-bare",
        "function-redis",
        "function-history",
        "function-redis-history",
        "function-metrics",
        "function-auth",
        "function-tracing",
        "function-tracing-messages",
        "function-tracing-unsampled",
    }
)


def kind_available(kind: Kind) -> bool:
    """Tell whether the packages a kind needs are installed (the ``bench`` extra)."""
    from importlib.util import find_spec

    return all(find_spec(name) is not None for name in kind.requires)


# aiohttp and aioendpoints ------------------------------------------------------------------


async def _run_aiohttp_app(app: Any, sock: socket.socket, stop: asyncio.Event) -> None:
    from aiohttp import web

    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    _announce(sock)
    await stop.wait()
    await runner.cleanup()


async def app_aiohttp(heartbeat: float | None = None) -> Any:
    """Raw aiohttp: the loop every aiohttp WebSocket tutorial shows, with its defaults."""
    from aiohttp import WSMsgType, web

    async def text(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=heartbeat)
        await ws.prepare(request)
        async for message in ws:
            if message.type is WSMsgType.TEXT:
                await ws.send_str(message.data)
        return ws

    async def json_echo(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for message in ws:
            if message.type is WSMsgType.TEXT:
                await ws.send_str(json.dumps(json.loads(message.data)))
        return ws

    async def binary(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=heartbeat)
        await ws.prepare(request)
        async for message in ws:
            if message.type is WSMsgType.BINARY:
                await ws.send_bytes(message.data)
        return ws

    app = web.Application()
    app.router.add_get("/text", text)
    app.router.add_get("/json", json_echo)
    app.router.add_get("/bytes", binary)
    return app


async def app_aiohttp_heartbeat() -> Any:
    """Raw aiohttp with aiohttp's own heartbeat at aioendpoints' default interval (20 s)."""
    return await app_aiohttp(heartbeat=20.0)


async def app_function(
    *, metrics: bool = False, setup_options: dict[str, Any] | None = None, **options: Any
) -> Any:
    """aioendpoints function views, as the guide writes them (with the default options)."""
    from aiohttp import web

    import aioendpoints
    from aioendpoints import WebSocket, WebSocketRoutes

    routes = WebSocketRoutes()

    async def echo(ws: WebSocket) -> None:
        await ws.accept()
        async for message in ws:
            await ws.send(message)

    routes.add_websocket_route("/text", echo, value_type="text", **options)
    routes.add_websocket_route("/json", echo, value_type="json", **options)
    routes.add_websocket_route("/bytes", echo, value_type="bytes", **options)
    app = web.Application()
    aioendpoints.setup(app, metrics=metrics, **(setup_options or {}))
    app.add_routes(routes)
    return app


async def app_function_metrics() -> Any:
    """aioendpoints function views with Prometheus metrics on: every message counted."""
    return await app_function(metrics=True)


async def app_function_tracing(*, trace_messages: bool = False, sampled: bool = True) -> Any:
    """aioendpoints function views traced by the OpenTelemetry SDK, into an exporter that
    drops every span: the figure is aioendpoints' and the SDK's cost, not an exporter's."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased

    class Dropping(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider() if sampled else TracerProvider(sampler=ParentBased(ALWAYS_OFF))
    provider.add_span_processor(SimpleSpanProcessor(Dropping()))
    return await app_function(setup_options={"tracing": provider, "trace_messages": trace_messages})


async def app_function_tracing_messages() -> Any:
    """aioendpoints function views with a span per received message."""
    return await app_function_tracing(trace_messages=True)


async def app_function_tracing_unsampled() -> Any:
    """aioendpoints function views asking for spans per message, on connections whose trace
    the sampler leaves out (as most are under a ratio sampler)."""
    return await app_function_tracing(trace_messages=True, sampled=False)


async def app_function_auth() -> Any:
    """aioendpoints function views behind an ``authenticate`` check whose principal expires
    (in an hour), so the admission and the refresh's receive filter run."""
    return await app_function(authenticate=_expiring_principal)


def _expiring_principal(request: Any) -> Any:
    from aioendpoints.auth import Principal

    return Principal("bench", expires_at=time.time() + 3600)


async def app_function_stdlib_json() -> Any:
    """aioendpoints function views with orjson hidden, so the stdlib json fallback runs."""
    sys.modules["orjson"] = None  # type: ignore[assignment]  # makes `import orjson` fail
    return await app_function()


async def app_function_no_heartbeat() -> Any:
    """aioendpoints function views without the default 20-second keepalive."""
    return await app_function(heartbeat=None)


async def app_function_bare() -> Any:
    """aioendpoints function views without the keepalive and without the send guard."""
    return await app_function(heartbeat=None, send_timeout=None)


async def app_endpoint() -> Any:
    """aioendpoints class endpoints, one per value type."""
    from aiohttp import web

    import aioendpoints
    from aioendpoints import WebSocket, WebSocketEndpoint, WebSocketRoutes

    routes = WebSocketRoutes()

    class Echo(WebSocketEndpoint):
        async def on_receive(self, ws: WebSocket, data: Any) -> None:
            await ws.send(data)

    class TextEcho(Echo):
        encoding = "text"

    class JSONEcho(Echo):
        encoding = "json"

    class BytesEcho(Echo):
        encoding = "bytes"

    routes.add_websocket_route("/text", TextEcho)
    routes.add_websocket_route("/json", JSONEcho)
    routes.add_websocket_route("/bytes", BytesEcho)
    app = web.Application()
    aioendpoints.setup(app)
    app.add_routes(routes)
    return app


# The peers ---------------------------------------------------------------------------------


async def serve_starlette(sock: socket.socket, stop: asyncio.Event) -> None:
    """Starlette WebSocket routes on uvicorn (its default WebSocket implementation)."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute
    from starlette.websockets import WebSocket, WebSocketDisconnect

    async def text(ws: WebSocket) -> None:
        await ws.accept()
        try:
            while True:
                await ws.send_text(await ws.receive_text())
        except WebSocketDisconnect:
            pass

    async def json_echo(ws: WebSocket) -> None:
        await ws.accept()
        try:
            while True:
                await ws.send_json(await ws.receive_json())
        except WebSocketDisconnect:
            pass

    async def binary(ws: WebSocket) -> None:
        await ws.accept()
        try:
            while True:
                await ws.send_bytes(await ws.receive_bytes())
        except WebSocketDisconnect:
            pass

    app = Starlette(
        routes=[
            WebSocketRoute("/text", text),
            WebSocketRoute("/json", json_echo),
            WebSocketRoute("/bytes", binary),
        ]
    )
    config = uvicorn.Config(
        app, lifespan="off", log_level="warning", access_log=False, ws_per_message_deflate=False
    )
    server = uvicorn.Server(config)
    # uvicorn installs its own SIGTERM/SIGINT handlers in serve(); it stops on either.
    serving = asyncio.ensure_future(server.serve(sockets=[sock]))
    for _ in range(3000):  # up to 30 seconds
        if server.started or serving.done():
            break
        await asyncio.sleep(0.01)
    _announce(sock)
    await serving


async def serve_websockets(sock: socket.socket, stop: asyncio.Event) -> None:
    """The python-websockets asyncio server, routing on the request path."""
    from websockets.asyncio.server import ServerConnection, serve
    from websockets.exceptions import ConnectionClosed

    async def handler(ws: ServerConnection) -> None:
        path = ws.request.path if ws.request is not None else ""
        try:
            if path == "/json":
                async for message in ws:
                    await ws.send(json.dumps(json.loads(message)))
            else:
                async for message in ws:
                    await ws.send(message)
        except ConnectionClosed:
            pass

    async with serve(handler, sock=sock, compression=None):
        _announce(sock)
        await stop.wait()


#: The aiohttp applications of the aiohttp and aioendpoints kinds.
APPS: dict[str, Callable[[], Awaitable[Any]]] = {
    "aiohttp": app_aiohttp,
    "aiohttp-heartbeat": app_aiohttp_heartbeat,
    "function": app_function,
    "function-stdlib-json": app_function_stdlib_json,
    "function-no-heartbeat": app_function_no_heartbeat,
    "function-bare": app_function_bare,
    "function-metrics": app_function_metrics,
    "function-auth": app_function_auth,
    "function-tracing": app_function_tracing,
    "function-tracing-messages": app_function_tracing_messages,
    "function-tracing-unsampled": app_function_tracing_unsampled,
    "endpoint": app_endpoint,
}
#: The peers, which run their own servers.
PEERS: dict[str, Serve] = {
    "starlette": serve_starlette,
    "websockets": serve_websockets,
}
SERVERS = [*APPS, *PEERS]


def _mark() -> None:
    """Answer SIGUSR1: call getppid(), where callgrind dumps its counts, then say so."""
    os.getppid()
    print("MARK", flush=True)


def _collect_and_mark() -> None:
    """Answer SIGUSR2: a full garbage collection, then the mark of SIGUSR1.

    A series of handshakes allocates enough for the interpreter's collections to fall in it
    or not by chance; starting each series from a collected heap keeps the count steady.
    """
    gc.collect()
    _mark()


def _announce(sock: socket.socket) -> None:
    print(f"PORT {sock.getsockname()[1]}", flush=True)


def raise_file_limit() -> None:
    """Raise the open-files limit to its hard maximum, for thousands of connections."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def listening_socket() -> socket.socket:
    """A non-blocking socket listening on a free loopback port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(4096)
    sock.setblocking(False)
    return sock


async def _main(kind: str) -> None:
    sock = listening_socket()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, _mark)
    loop.add_signal_handler(signal.SIGUSR2, _collect_and_mark)
    if kind in PEERS:
        if kind != "starlette":
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, stop.set)
        await PEERS[kind](sock, stop)
        return
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await _run_aiohttp_app(await APPS[kind](), sock, stop)


def run_deployed(app: Awaitable[Any], extra_signals: dict[int, Callable[[], None]]) -> None:
    """Serve ``app`` with ``web.run_app``, as it is deployed: its loop keeps a timer.

    run_app sleeps an hour at a time while it serves; a loop with any timer does a little
    more work per iteration than one without, which raw aiohttp pays in production too.
    """
    from aiohttp import web

    sock = listening_socket()
    loop = asyncio.new_event_loop()
    for signum, handler in extra_signals.items():
        loop.add_signal_handler(signum, handler)
    web.run_app(app, sock=sock, loop=loop, access_log=None, print=lambda _: _announce(sock))


def main(argv: list[str]) -> None:
    """``python -m bench.servers KIND [--deployed]``."""
    deployed = "--deployed" in argv
    names = [arg for arg in argv if arg != "--deployed"]
    if len(names) != 1 or names[0] not in SERVERS:
        sys.exit(f"usage: python -m bench.servers {{{','.join(SERVERS)}}} [--deployed]")
    kind = names[0]
    raise_file_limit()
    if deployed and kind in APPS:
        run_deployed(APPS[kind](), {signal.SIGUSR1: _mark, signal.SIGUSR2: _collect_and_mark})
    else:
        asyncio.run(_main(kind))


if __name__ == "__main__":
    main(sys.argv[1:])
