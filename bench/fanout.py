"""Fan-out benchmark: one message to 1,000 WebSocket clients, several ways, in one run.

    python bench/fanout.py [--clients 1000] [--rounds 30] [--size 100] [--redis-url URL]

The clients live in this process; each server is a separate process (this file with
``--serve``). For each server the clients connect once, then every round publishes one
message to all of them and waits until every client has it. Reported per way:

* **publish call**: how long the server's publishing code ran (median): the send_str loop,
  or ``aioendpoints.publish()`` (which for Redis includes the round trip to Redis; in the
  "other process" way it is the publishing server's call, with no members there);
* **time to all**: from the publish request to the last client's receipt (median, p90);
* **server CPU per delivered message**: the members' server's process CPU time (user and
  system: on loopback, the kernel's TCP work is charged to the sender) over the rounds,
  less that of as many rounds that send nothing (the HTTP requests that drive a round),
  divided by the messages delivered;
* **server memory per connection**: the server's RSS growth from 0 to N connected clients.

Ways compared, over the same sockets where they share a server:

* ``plain send_str``: a loop of aiohttp's ``await ws.send_str(text)`` over the sockets;
* ``memory://``: ``aioendpoints.publish()`` with the in-process backend;
* ``redis, same process``: the Redis backend, publishing in the members' process;
* ``redis, other process``: the Redis backend, publishing from a second server process, so
  every message comes to the members' process through its Redis subscription.

Without ``--redis-url``, a private ``redis-server`` is started on a free port. Clients do
not negotiate permessage-deflate, so every way sends uncompressed frames.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from aiohttp import web

GROUP = "bench"
WARMUP_ROUNDS = 3
ROUND_TIMEOUT = 30.0


# The server ----------------------------------------------------------------------------


def server_app(broadcast: str | None, size: int) -> web.Application:
    """The benchmarked server: ``/raw`` plain aiohttp, ``/ws`` aioendpoints in the group."""
    import aioendpoints
    from aioendpoints import WebSocket, WebSocketRoutes

    app = web.Application()
    sockets: list[web.WebSocketResponse] = []
    padding = "x" * size

    async def raw(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=False)
        await ws.prepare(request)
        sockets.append(ws)
        try:
            async for _ in ws:
                pass
        finally:
            sockets.remove(ws)
        return ws

    routes = WebSocketRoutes()

    @routes.websocket_route("/idle", compress=False)
    async def idle(ws: WebSocket) -> None:
        await ws.accept()
        assert ws.response is not None
        sockets.append(ws.response)
        try:
            async for _ in ws:
                pass
        finally:
            sockets.remove(ws.response)

    @routes.websocket_route("/ws", compress=False)
    async def member(ws: WebSocket) -> None:
        await ws.accept()
        await ws.join(GROUP)
        assert ws.response is not None
        sockets.append(ws.response)
        try:
            async for _ in ws:
                pass
        finally:
            sockets.remove(ws.response)

    async def publish(request: web.Request) -> web.Response:
        message = {"round": int(request.query["round"]), "text": padding}
        started = time.perf_counter()
        if request.query["way"] == "nothing":
            pass  # measures what a round costs besides the fan-out
        elif request.query["way"] == "plain":
            text = json.dumps(message)
            for ws in sockets:
                await ws.send_str(text)
        else:
            await aioendpoints.publish(request.app, GROUP, message)
        return web.json_response({"elapsed": time.perf_counter() - started})

    async def stats(request: web.Request) -> web.Response:
        # A full collection costs milliseconds: only when memory is asked for.
        rss = resident_memory() if "memory" in request.query else 0
        return web.json_response(
            {
                "cpu": time.process_time(),
                "rss": rss,
                "sockets": len(sockets),
            }
        )

    if broadcast is not None:
        aioendpoints.setup(app, broadcast=broadcast)
        app.add_routes(routes)
    app.router.add_get("/raw", raw)
    app.router.add_post("/publish", publish)
    app.router.add_get("/stats", stats)
    return app


def resident_memory() -> int:
    """This process's resident set size in bytes, after a full garbage collection."""
    gc.collect()
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def serve(port: int, broadcast: str | None, size: int) -> None:
    """Run the server until terminated."""
    raise_file_limit()
    web.run_app(
        server_app(broadcast, size), host="127.0.0.1", port=port, print=None, access_log=None
    )


# Helpers -------------------------------------------------------------------------------


def raise_file_limit() -> None:
    """Allow as many open sockets as the hard limit permits."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def wait_for_port(port: int, process: subprocess.Popen[bytes]) -> None:
    for _ in range(400):
        if process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before listening")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        await writer.wait_closed()
        return
    raise TimeoutError(f"nothing listens on port {port}")


@asynccontextmanager
async def process(command: list[str], port: int) -> AsyncIterator[None]:
    """Run ``command`` until the block ends; it must listen on ``port``."""
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL)  # noqa: ASYNC220
    try:
        await wait_for_port(port, child)
        yield
    finally:
        child.terminate()
        try:
            await asyncio.to_thread(child.wait, 15)
        except subprocess.TimeoutExpired:
            child.kill()
            await asyncio.to_thread(child.wait, 5)


@asynccontextmanager
async def server(broadcast: str | None, size: int) -> AsyncIterator[str]:
    port = free_port()
    command = [sys.executable, __file__, "--serve", str(port), "--size", str(size)]
    if broadcast is not None:
        command += ["--broadcast", broadcast]
    async with process(command, port):
        yield f"http://127.0.0.1:{port}"


@asynccontextmanager
async def redis_server(url: str | None) -> AsyncIterator[str]:
    if url is not None:
        yield url
        return
    executable = shutil.which("redis-server")
    if executable is None:
        raise SystemExit("redis-server is not installed: pass --redis-url")
    port = free_port()
    with tempfile.TemporaryDirectory() as directory:
        command = [executable, "--bind", "127.0.0.1", "--port", str(port), "--save", ""]
        command += ["--appendonly", "no", "--dir", directory]
        async with process(command, port):
            yield f"redis://127.0.0.1:{port}/0"


# The clients ---------------------------------------------------------------------------


@dataclass
class Clients:
    """N connected clients counting the messages they receive."""

    session: aiohttp.ClientSession
    sockets: list[aiohttp.ClientWebSocketResponse] = field(default_factory=list)
    readers: list[asyncio.Task[None]] = field(default_factory=list)
    received = 0
    target = 0
    all_received: asyncio.Event = field(default_factory=asyncio.Event)

    async def connect(self, url: str, count: int) -> None:
        for start in range(0, count, 100):
            batch = range(start, min(start + 100, count))
            self.sockets += await asyncio.gather(
                *(self.session.ws_connect(url, compress=0, max_msg_size=0) for _ in batch)
            )
        self.readers = [asyncio.create_task(self._read(ws)) for ws in self.sockets]

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for message in ws:
            if message.type is aiohttp.WSMsgType.TEXT:
                self.received += 1
                if self.received == self.target:
                    self.all_received.set()

    def expect(self, count: int) -> None:
        self.all_received.clear()
        self.received = 0
        self.target = count

    async def close(self) -> None:
        await asyncio.gather(*(ws.close() for ws in self.sockets))
        for reader in self.readers:
            reader.cancel()
        await asyncio.gather(*self.readers, return_exceptions=True)


@dataclass
class Result:
    way: str
    times: list[float]
    cpu_per_message: float
    calls: list[float] = field(default_factory=list)
    memory_per_connection: float | None = None


async def stats(
    session: aiohttp.ClientSession, base: str, *, memory: bool = False
) -> dict[str, float]:
    async with session.get(f"{base}/stats", params={"memory": "1"} if memory else {}) as response:
        return dict(await response.json())


async def wait_sockets(session: aiohttp.ClientSession, base: str, count: int) -> None:
    for _ in range(600):
        if (await stats(session, base))["sockets"] == count:
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"the server never had {count} sockets")


async def measure(
    way: str,
    label: str,
    clients: Clients,
    session: aiohttp.ClientSession,
    members_base: str,
    publish_base: str,
    rounds: int,
    overhead: float = 0.0,
) -> Result:
    """Publish ``rounds`` messages one at a time; time each until all clients have it.

    ``overhead`` is the server CPU time of a round that sends nothing (its HTTP requests),
    subtracted so that the CPU figure is the fan-out's alone.
    """
    count = len(clients.sockets) if way != "nothing" else 0
    times: list[float] = []
    calls: list[float] = []
    cpu = 0.0
    for number in range(WARMUP_ROUNDS + rounds):
        clients.expect(count)
        if count == 0:
            clients.all_received.set()
        before = await stats(session, members_base)
        started = time.perf_counter()
        url = f"{publish_base}/publish?way={way}&round={number}"
        async with session.post(url) as response:
            assert response.status == 200, await response.text()
            call = (await response.json())["elapsed"]
        await asyncio.wait_for(clients.all_received.wait(), ROUND_TIMEOUT)
        elapsed = time.perf_counter() - started
        after = await stats(session, members_base)
        if number >= WARMUP_ROUNDS:
            times.append(elapsed)
            calls.append(call)
            cpu += after["cpu"] - before["cpu"]
    per_round = cpu / rounds - overhead
    return Result(label, times, per_round / count if count else per_round, calls)


async def fan_out(
    way: str,
    label: str,
    clients: Clients,
    session: aiohttp.ClientSession,
    members_base: str,
    publish_base: str,
    rounds: int,
) -> Result:
    """Measure one way, less the server CPU of rounds that send nothing."""
    nothing = await measure("nothing", "", clients, session, members_base, publish_base, rounds)
    return await measure(
        way, label, clients, session, members_base, publish_base, rounds,
        nothing.cpu_per_message,
    )  # fmt: skip


async def run(arguments: argparse.Namespace) -> list[Result]:
    results: list[Result] = []
    connector = aiohttp.TCPConnector(limit=0)
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        redis_server(arguments.redis_url) as redis_url,
    ):
        phases: list[tuple[str | None, str]] = [(None, "/raw"), ("memory://", "/idle")]
        phases += [("memory://", "/ws"), (redis_url, "/ws")]
        for broadcast, path in phases:
            async with server(broadcast, arguments.size) as base:
                idle_rss = (await stats(session, base, memory=True))["rss"]
                clients = Clients(session)
                await clients.connect(f"{base}{path}", arguments.clients)
                await wait_sockets(session, base, arguments.clients)
                rss = (await stats(session, base, memory=True))["rss"]
                per_connection = (rss - idle_rss) / arguments.clients
                name = {None: "raw aiohttp", "memory://": "memory://"}.get(broadcast, "redis")
                if path == "/idle":
                    results.append(
                        Result("aioendpoints, idle, no group", [], 0, [], per_connection)
                    )
                    await clients.close()
                    continue

                rounds = arguments.rounds
                plain = await fan_out(
                    "plain", f"send_str loop ({name})", clients, session, base, base,
                    rounds,
                )  # fmt: skip
                plain.memory_per_connection = per_connection
                results.append(plain)
                if broadcast == "memory://":
                    way = "memory://"
                    results.append(
                        await fan_out("publish", way, clients, session, base, base, rounds)
                    )
                elif broadcast is not None:
                    way = "redis, same process"
                    results.append(
                        await fan_out("publish", way, clients, session, base, base, rounds)
                    )
                    async with server(broadcast, arguments.size) as publisher:
                        way = "redis, other process"
                        results.append(
                            await fan_out("publish", way, clients, session, base, publisher, rounds)
                        )
                await clients.close()
    return results


def report(results: list[Result], arguments: argparse.Namespace) -> str:
    """The results as a table."""
    lines = [
        f"Fan-out of one {arguments.size}-character JSON message to {arguments.clients} "
        f"clients, {arguments.rounds} rounds after {WARMUP_ROUNDS} warm-up",
        f"Python {sys.version.split()[0]}, aiohttp {aiohttp.__version__}, {os.cpu_count()} CPUs",
        "",
        f"{'way':30} {'publish call':>12} {'time to all':>11} {'p90':>9} {'CPU/msg':>9} "
        f"{'RSS/conn':>9}",
    ]
    for result in results:
        memory = (
            f"{result.memory_per_connection / 1024:.2f} KiB"
            if result.memory_per_connection is not None
            else ""
        )
        times = sorted(result.times)
        if not times:
            lines.append(f"{result.way:30} {'':>12} {'':>11} {'':>9} {'':>9} {memory:>9}")
            continue
        p90 = times[min(len(times) - 1, int(len(times) * 0.9))]
        lines.append(
            f"{result.way:30} {statistics.median(result.calls) * 1e3:9.2f} ms "
            f"{statistics.median(times) * 1e3:8.2f} ms {p90 * 1e3:6.2f} ms "
            f"{result.cpu_per_message * 1e6:6.2f} µs {memory:>9}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--size", type=int, default=100, help="characters of text per message")
    parser.add_argument("--redis-url", help="a running Redis (default: start one)")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--broadcast", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.serve:
        serve(arguments.serve, arguments.broadcast, arguments.size)
        return
    if not 1 <= arguments.clients <= 5000 or not 1 <= arguments.rounds <= 1000:
        parser.error("--clients must be 1..5000 and --rounds 1..1000")
    raise_file_limit()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    print(report(asyncio.run(run(arguments)), arguments))


if __name__ == "__main__":
    main()
