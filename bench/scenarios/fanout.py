"""Fan-out: one message published to 1,000 local members, against a raw ``send_str`` loop.

The server is this module run as ``python -m bench.scenarios.fanout KIND``, pinned like the
echo servers. Each member is a light client connection on ``/members``; every round the
harness asks the server (``POST /publish``) to send one small JSON message to all of them
and waits until every member has it. The kinds:

* ``aiohttp``: raw aiohttp handlers; the message is ``json.dumps``-ed once and sent with a
  loop of ``await ws.send_str(text)`` over the sockets, as an aiohttp app would;
* ``function``: an aioendpoints view that joins a group, with its default options, and
  ``aioendpoints.publish()`` on the default ``memory://`` backend;
* ``endpoint``: the same with a class endpoint that declares the group (``groups``);
* ``function-history`` and ``function-redis-history``: the same with every group keeping
  a history (``History(size=1000, ttl=600)``), so each member gets a numbered envelope;
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

from ..client import Connection
from ..process import ServerProcess
from ..servers import _mark
from . import Figures, Metric, Scenario, Settings, register
from .load import HOST, close_all, open_connections

__all__ = ["KINDS", "Publisher", "fan_out", "fanout_server", "server_app"]

#: The kinds a fan-out server can be.
KINDS = (
    "aiohttp",
    "function",
    "endpoint",
    "function-redis",
    "function-history",
    "function-redis-history",
)

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
    from aioendpoints import WebSocket, WebSocketEndpoint, WebSocketRoutes

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

    class Member(WebSocketEndpoint):
        groups = (GROUP,)

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
        routes.add_websocket_route(PATH, Member if kind == "endpoint" else member)
        broadcast = "memory://"
        if kind.startswith("function-redis"):
            if redis_url is None:
                raise RuntimeError(f"{kind} needs {REDIS_URL_VARIABLE}")
            broadcast = redis_url
        history = aioendpoints.History(size=1000, ttl=600) if kind.endswith("history") else None
        aioendpoints.setup(app, broadcast=broadcast, history=history)
        app.add_routes(routes)
    app.router.add_post("/publish", publish)
    app.router.add_get("/stats", stats)
    return app


def _resident_memory() -> int:
    """This process's resident set size in bytes, after a full garbage collection."""
    gc.collect()
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _collect_and_mark() -> None:
    """Answer SIGUSR2: a full garbage collection, then the mark of SIGUSR1.

    With 1,000 members in memory, one collection of the oldest generation costs millions of
    instructions, and a fan-out that allocates little per recipient gets one or none in a
    series depending on timing. ``--callgrind`` starts every series with this mark, so each
    series starts from a collected heap; the collection itself falls before the dump, in
    the interval that is not counted.
    """
    gc.collect()
    _mark()


async def _serve(kind: str) -> None:
    from ..servers import _run_aiohttp_app, raise_file_limit

    raise_file_limit()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    # The marks of python -m bench --callgrind.
    loop.add_signal_handler(signal.SIGUSR1, _mark)
    loop.add_signal_handler(signal.SIGUSR2, _collect_and_mark)
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
    if kind.startswith("function-redis") and shutil.which("redis-server") is None:
        return "redis-server is not installed (Debian: apt-get install redis-server)"
    return None


def fanout_server(kind: str, cpu: int | None, **options: Any) -> ServerProcess:
    """A fan-out server of ``kind``; ``options`` go to :class:`ServerProcess`."""
    env = dict(options.pop("env", None) or {})
    if kind.startswith("function-redis"):
        env[REDIS_URL_VARIABLE] = _redis_url()
    return ServerProcess(kind, cpu, env=env, module="bench.scenarios.fanout", **options)


# The harness side ----------------------------------------------------------------------------


class Publisher:
    """Drives one fan-out server: its members, its figures, and one publish at a time."""

    def __init__(self, session: Any, server: ServerProcess) -> None:
        self._session = session
        self._base = f"http://{HOST}:{server.port}"
        self._kind = server.kind
        self._port = server.port
        self.members: list[Connection] = []
        #: Seconds that opening the members' connections took (handshakes included).
        self.connect_seconds = 0.0

    async def stats(self, memory: bool = False) -> dict[str, float]:
        """The server's CPU time so far, its members and (when asked) its memory."""
        params = {"memory": "1"} if memory else {}
        async with self._session.get(f"{self._base}/stats", params=params) as response:
            return dict(await response.json())

    async def connect(self, count: int, wait: float = 30.0) -> None:
        """Open ``count`` member connections and wait until all have joined the group."""
        started = time.perf_counter()
        self.members = await open_connections(self._port, PATH, count, wait)
        self.connect_seconds = time.perf_counter() - started
        deadline = time.perf_counter() + wait
        while (await self.stats())["members"] != count:
            if time.perf_counter() > deadline:
                raise RuntimeError(f"{self._kind}: the group never had {count} members")
            await asyncio.sleep(0.05)

    async def publish(self, way: str, number: int, wait: float = ROUND_TIMEOUT) -> None:
        """Publish message ``number`` (or nothing) and wait until every member has it."""
        waiters = [m.expect_message() for m in self.members] if way != "nothing" else []
        url = f"{self._base}/publish?way={way}&round={number}"
        async with self._session.post(url) as response:
            if response.status != 200:
                raise RuntimeError(f"publish answered {response.status}")
        for payload in await asyncio.wait_for(asyncio.gather(*waiters), wait):
            message = json.loads(payload)
            if message.get("data", message)["round"] != number:  # history: in an envelope
                raise RuntimeError(f"{self._kind} delivered {payload[:60]!r}")

    async def close(self) -> None:
        """Close every member connection."""
        await close_all(self.members)


CONNECT = Metric("connect_us", "handshake time per connection (batches of 100)", "µs")


async def fan_out(server: ServerProcess, members: int, rounds_count: int) -> Figures:
    """Connect ``members``, then publish to all of them ``rounds_count`` times; the figures."""
    from aiohttp import ClientSession

    async with ClientSession() as session:
        publisher = Publisher(session, server)
        idle_rss = (await publisher.stats(memory=True))["rss"]
        try:
            await publisher.connect(members, wait=60.0)
            rss = (await publisher.stats(memory=True))["rss"]

            async def rounds(way: str) -> tuple[float, list[float]]:
                """Server CPU seconds per round and the times to all, after the warm-up."""
                cpu = 0.0
                times: list[float] = []
                for number in range(WARMUP_ROUNDS + rounds_count):
                    before = await publisher.stats()
                    started = time.perf_counter()
                    await publisher.publish(way, number)
                    elapsed = time.perf_counter() - started
                    after = await publisher.stats()
                    if number >= WARMUP_ROUNDS:
                        cpu += after["cpu"] - before["cpu"]
                        times.append(elapsed)
                return cpu / rounds_count, times

            nothing, _ = await rounds("nothing")
            publish, times = await rounds("publish")
        finally:
            await publisher.close()
    return {
        CPU.key: (publish - nothing) / members * 1e6,
        TIME_TO_ALL.key: statistics.median(times) * 1e3,
        MEMORY.key: (rss - idle_rss) / members / 1024,
        CONNECT.key: publisher.connect_seconds / members * 1e6,
        "messages": members * rounds_count,
    }


async def _fan_out(server: ServerProcess, settings: Settings) -> Figures:
    return await fan_out(server, settings.fanout_members, settings.fanout_rounds)


register(
    Scenario(
        "fanout",
        "one JSON message published to every member: raw aiohttp's send_str loop, "
        "aioendpoints.publish() on memory:// and on redis://",
        (CPU, TIME_TO_ALL, MEMORY, CONNECT),
        _fan_out,
        extra_kinds=("function-redis", "function-history", "function-redis-history"),
        only_kinds=KINDS,
        server=lambda kind, cpu, settings: fanout_server(kind, cpu),
        unavailable=_unavailable,
    )
)


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in KINDS:
        sys.exit(f"usage: python -m bench.scenarios.fanout {{{','.join(KINDS)}}}")
    asyncio.run(_serve(sys.argv[1]))
