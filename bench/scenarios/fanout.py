"""Fan-out: one message published to 1,000 local members, against a raw ``send_str`` loop.

The server is this module run as ``python -m bench.scenarios.fanout KIND``, pinned like the
echo servers. Each member is a light client connection on ``/members``; every round the
harness asks the server (``POST /publish``) to send one small JSON message to all of them
and waits until every member has it. The kinds:

* ``aiohttp``: raw aiohttp handlers; the message is ``json.dumps``-ed once and sent with a
  loop of ``await ws.send_str(text)`` over the sockets, as an aiohttp app would;
* ``function``: an aioendpoints view that joins a group, with its default options, and
  ``aioendpoints.publish()`` on the default ``memory://`` backend;
* ``function-redis``: the same over ``redis://``, the Redis server being started by the
  bench on a free port (from ``redis-server`` on the PATH; skipped without it).

Reported: the server's CPU time (user and system, read by the server itself with
``time.process_time()``) per delivered message, less that of as many rounds that send
nothing (the HTTP requests that drive a round); the median time from the publish request
to the last member's receipt; and the server's resident memory per connected member.
"""

from __future__ import annotations

import asyncio
import atexit
import gc
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

from ..process import ServerProcess
from . import Figures, Metric, Scenario, Settings, register
from .load import HOST, close_all, open_connections

__all__ = ["server_app"]

GROUP = "bench"
PATH = "/members"
TEXT_SIZE = 100
WARMUP_ROUNDS = 3
ROUND_TIMEOUT = 30.0
REDIS_URL_VARIABLE = "BENCH_FANOUT_REDIS_URL"

CPU = Metric("cpu_us", "server CPU per recipient", "µs")
TIME_TO_ALL = Metric("time_to_all_ms", "time until all have it", "ms")
MEMORY = Metric("kib_per_member", "memory per connected member", "KiB", compare="difference")


# The server (runs in its own process) ------------------------------------------------------


def server_app(kind: str, redis_url: str | None) -> Any:
    """The benchmarked app: members on ``/members``, ``POST /publish``, ``GET /stats``."""
    from aiohttp import web

    import aioendpoints
    from aioendpoints import WebSocket, WebSocketRoutes

    app = web.Application()
    raw_sockets: list[web.WebSocketResponse] = []
    padding = "x" * TEXT_SIZE

    async def raw_member(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        raw_sockets.append(ws)
        try:
            async for _ in ws:
                pass
        finally:
            raw_sockets.remove(ws)
        return ws

    async def member(ws: WebSocket) -> None:
        await ws.accept()
        await ws.join(GROUP)
        async for _ in ws:
            pass

    def members() -> int:
        if kind == "aiohttp":
            return len(raw_sockets)
        return len(aioendpoints.group_members(app, GROUP))

    async def publish(request: web.Request) -> web.Response:
        message = {"round": int(request.query["round"]), "text": padding}
        if request.query["way"] == "nothing":
            pass  # what a round costs besides the fan-out, subtracted from the figures
        elif kind == "aiohttp":
            text = json.dumps(message)
            for ws in raw_sockets:
                await ws.send_str(text)
        else:
            await aioendpoints.publish(request.app, GROUP, message)
        return web.Response()

    async def stats(request: web.Request) -> web.Response:
        # A full collection costs milliseconds: only when memory is asked for.
        rss = _resident_memory() if "memory" in request.query else 0
        return web.json_response({"cpu": time.process_time(), "rss": rss, "members": members()})

    if kind == "aiohttp":
        app.router.add_get(PATH, raw_member)
    else:
        routes = WebSocketRoutes()
        routes.add_websocket_route(PATH, member)
        aioendpoints.setup(app, broadcast=redis_url if kind == "function-redis" else "memory://")
        app.add_routes(routes)
    app.router.add_post("/publish", publish)
    app.router.add_get("/stats", stats)
    return app


def _resident_memory() -> int:
    """This process's resident set size in bytes, after a full garbage collection."""
    gc.collect()
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def _serve(kind: str) -> None:
    from ..servers import _run_aiohttp_app, raise_file_limit

    raise_file_limit()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, 0))
    sock.listen(4096)
    sock.setblocking(False)
    await _run_aiohttp_app(server_app(kind, os.environ.get(REDIS_URL_VARIABLE)), sock, stop)


# Redis, started once per bench run -------------------------------------------------------

_redis: dict[str, str] = {}


def _redis_url() -> str:
    """Start a private ``redis-server`` on a free port (once), stopped when the bench exits."""
    if "url" in _redis:
        return _redis["url"]
    executable = shutil.which("redis-server")
    if executable is None:
        raise RuntimeError("redis-server is not installed")
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port = int(probe.getsockname()[1])
    directory = tempfile.mkdtemp(prefix="bench-redis-")
    command = [executable, "--bind", HOST, "--port", str(port), "--save", "", "--dir", directory]
    process = subprocess.Popen([*command, "--appendonly", "no"], stdout=subprocess.DEVNULL)

    def stop() -> None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        shutil.rmtree(directory, ignore_errors=True)

    atexit.register(stop)
    for _ in range(200):  # up to 10 seconds
        if process.poll() is not None:
            raise RuntimeError(f"redis-server exited with {process.returncode}")
        try:
            socket.create_connection((HOST, port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    else:
        raise RuntimeError(f"redis-server did not listen on port {port}")
    _redis["url"] = f"redis://{HOST}:{port}/0"
    return _redis["url"]


def _unavailable(kind: str) -> str | None:
    if kind == "function-redis" and shutil.which("redis-server") is None:
        return "redis-server is not installed (Debian: apt-get install redis-server)"
    return None


def _server(kind: str, cpu: int | None) -> ServerProcess:
    env = {REDIS_URL_VARIABLE: _redis_url()} if kind == "function-redis" else None
    return ServerProcess(kind, cpu, env=env, module="bench.scenarios.fanout")


# The harness side ----------------------------------------------------------------------------


async def _fan_out(server: ServerProcess, settings: Settings) -> Figures:
    from aiohttp import ClientSession

    base = f"http://{HOST}:{server.port}"
    async with ClientSession() as session:

        async def stats(memory: bool = False) -> dict[str, float]:
            params = {"memory": "1"} if memory else {}
            async with session.get(f"{base}/stats", params=params) as response:
                return dict(await response.json())

        idle_rss = (await stats(memory=True))["rss"]
        members = await open_connections(server.port, PATH, settings.fanout_members)
        try:
            for _ in range(600):  # the members join right after the handshake
                if (await stats())["members"] == len(members):
                    break
                await asyncio.sleep(0.05)
            else:
                raise RuntimeError(f"{server.kind}: the group never had {len(members)} members")
            rss = (await stats(memory=True))["rss"]

            async def rounds(way: str) -> tuple[float, list[float]]:
                """Server CPU seconds per round and the times to all, after the warm-up."""
                cpu = 0.0
                times: list[float] = []
                for number in range(WARMUP_ROUNDS + settings.fanout_rounds):
                    waiters = [m.expect_message() for m in members] if way != "nothing" else []
                    before = await stats()
                    started = time.perf_counter()
                    url = f"{base}/publish?way={way}&round={number}"
                    async with session.post(url) as response:
                        if response.status != 200:
                            raise RuntimeError(f"publish answered {response.status}")
                    payloads = await asyncio.wait_for(asyncio.gather(*waiters), ROUND_TIMEOUT)
                    elapsed = time.perf_counter() - started
                    after = await stats()
                    for payload in payloads:
                        if json.loads(payload)["round"] != number:
                            raise RuntimeError(f"{server.kind} delivered {payload[:60]!r}")
                    if number >= WARMUP_ROUNDS:
                        cpu += after["cpu"] - before["cpu"]
                        times.append(elapsed)
                return cpu / settings.fanout_rounds, times

            nothing, _ = await rounds("nothing")
            publish, times = await rounds("publish")
        finally:
            await close_all(members)
    return {
        CPU.key: (publish - nothing) / len(members) * 1e6,
        TIME_TO_ALL.key: statistics.median(times) * 1e3,
        MEMORY.key: (rss - idle_rss) / len(members) / 1024,
        "messages": len(members) * settings.fanout_rounds,
    }


register(
    Scenario(
        "fanout",
        "one JSON message published to every member: raw aiohttp's send_str loop, "
        "aioendpoints.publish() on memory:// and on redis://",
        (CPU, TIME_TO_ALL, MEMORY),
        _fan_out,
        extra_kinds=("function-redis",),
        only_kinds=("aiohttp", "function", "function-redis"),
        server=_server,
        unavailable=_unavailable,
    )
)


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in ("aiohttp", "function", "function-redis"):
        sys.exit("usage: python -m bench.scenarios.fanout {aiohttp,function,function-redis}")
    asyncio.run(_serve(sys.argv[1]))
