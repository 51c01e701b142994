"""Keepalive: how long a server takes to notice a peer that went silent.

The server is this module run as ``python -m bench.scenarios.keepalive KIND``, with a
heartbeat of ``Settings.keepalive_heartbeat`` seconds: raw aiohttp with its own heartbeat
(``heartbeat=`` of ``WebSocketResponse``), or an aioendpoints function view or class endpoint
with the keepalive. Each peer connects, echoes one message, then goes silent: the harness
stops reading its socket, so it neither sends nor answers anything while the kernel still
acknowledges the bytes, as with a frozen process or a peer behind a dead NAT mapping. The
server notes (``time.monotonic()``, one clock for all processes) when the connection ended
(``on_disconnect`` for aioendpoints, the end of the ``async for`` for aiohttp); the figure is
that time less the moment the peer went silent, in heartbeats.

Expected: aiohttp pings one heartbeat after the last data and gives up half a heartbeat
later (1.5); aioendpoints' sweep notices between 1 and 1.5 heartbeats.
"""

from __future__ import annotations

import asyncio
import signal
import statistics
import sys
import time
from typing import Any

from ..client import OP_TEXT, connect, masked_frame
from ..process import ServerProcess
from . import Figures, Metric, Scenario, Settings, register
from .load import HOST

__all__ = ["KINDS", "keepalive_server"]

KINDS = ("aiohttp", "function", "endpoint")
PATH = "/ws"

DETECTION = Metric("detection_heartbeats", "silent peer dropped after (median)", "heartbeats")
WORST = Metric("worst_heartbeats", "silent peer dropped after (worst)", "heartbeats")


def server_app(kind: str, heartbeat: float) -> Any:
    """Echo on ``/ws`` with ``heartbeat``; ``GET /ended`` lists when connections ended."""
    from aiohttp import WSMsgType, web

    import aioendpoints
    from aioendpoints import WebSocket, WebSocketEndpoint, WebSocketRoutes

    ended: list[float] = []
    app = web.Application()

    async def raw(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=heartbeat)
        await ws.prepare(request)
        async for message in ws:
            if message.type is WSMsgType.TEXT:
                await ws.send_str(message.data)
        ended.append(time.monotonic())
        return ws

    class Echo(WebSocketEndpoint):
        encoding = "text"

        async def on_receive(self, ws: WebSocket, data: Any) -> None:
            await ws.send(data)

        async def on_disconnect(self, ws: WebSocket, close_code: int) -> None:
            ended.append(time.monotonic())

    async def echo(ws: WebSocket) -> None:
        await ws.accept()
        try:
            async for message in ws:
                await ws.send(message)
        finally:
            ended.append(time.monotonic())

    async def ended_times(request: web.Request) -> web.Response:
        return web.json_response(ended)

    if kind == "aiohttp":
        app.router.add_get(PATH, raw)
    else:
        routes = WebSocketRoutes()
        routes.add_websocket_route(PATH, Echo if kind == "endpoint" else echo, heartbeat=heartbeat)
        aioendpoints.setup(app)
        app.add_routes(routes)
    app.router.add_get("/ended", ended_times)
    return app


def keepalive_server(kind: str, cpu: int | None, **options: Any) -> ServerProcess:
    """A keepalive server of ``kind``; the heartbeat comes from the settings at run time."""
    return ServerProcess(kind, cpu, module="bench.scenarios.keepalive", **options)


async def _detection(server: ServerProcess, settings: Settings) -> Figures:
    from aiohttp import ClientSession

    heartbeat = settings.keepalive_heartbeat
    frame = masked_frame(OP_TEXT, b"last words")
    detections: list[float] = []
    async with ClientSession() as session:

        async def ended() -> list[float]:
            async with session.get(f"http://{HOST}:{server.port}/ended") as response:
                return list(await response.json())

        for _ in range(settings.keepalive_peers):
            before = len(await ended())
            peer = await connect(HOST, server.port, PATH)
            await peer.round_trip(frame)
            assert peer.transport is not None
            peer.transport.pause_reading()
            silent_since = time.monotonic()
            deadline = silent_since + 5 * heartbeat + 5
            while len(times := await ended()) == before:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{server.kind} never dropped a silent peer")
                await asyncio.sleep(heartbeat / 50)
            detections.append((times[before] - silent_since) / heartbeat)
            peer.transport.abort()
    return {
        DETECTION.key: statistics.median(detections),
        WORST.key: max(detections),
        "messages": len(detections),
    }


def _server(kind: str, cpu: int | None, settings: Settings) -> ServerProcess:
    return keepalive_server(kind, cpu, arguments=(str(settings.keepalive_heartbeat),))


register(
    Scenario(
        "keepalive",
        "a peer that goes silent: time until the server drops it, in heartbeats "
        "(raw aiohttp here runs its own heartbeat)",
        (DETECTION, WORST),
        _detection,
        only_kinds=KINDS,
        server=_server,
    )
)


async def _serve(kind: str, heartbeat: float) -> None:
    from ..servers import _mark, _run_aiohttp_app, listening_socket, raise_file_limit

    raise_file_limit()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, _mark)
    await _run_aiohttp_app(server_app(kind, heartbeat), listening_socket(), stop)


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in KINDS:
        sys.exit(f"usage: python -m bench.scenarios.keepalive {{{','.join(KINDS)}}} HEARTBEAT")
    asyncio.run(_serve(sys.argv[1], float(sys.argv[2])))
