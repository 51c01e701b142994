"""Echo scenarios: many connections, each running strict round trips of one message.

Reported: the server's CPU time per echoed message (from /proc/PID/stat), round-trip latency
percentiles, and how busy the server and the client were, to show the client kept up.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import time
from collections.abc import Callable

from ..client import OP_BINARY, OP_TEXT, masked_frame
from ..process import ServerProcess
from . import Figures, Metric, Scenario, Settings, register
from .load import close_all, open_connections

CPU = Metric("cpu_us", "server CPU per message", "µs")
P50 = Metric("p50_us", "round trip p50", "µs")
P99 = Metric("p99_us", "round trip p99", "µs")

TEXT_PAYLOAD = b"x" * 64
JSON_PAYLOAD = json.dumps(
    {"type": "chat", "room": "lobby", "user": 4217, "text": "hello, world", "tags": ["a", "b"]}
).encode()
BINARY_PAYLOAD = os.urandom(16 * 1024)


async def run_echo(
    server: ServerProcess,
    settings: Settings,
    *,
    path: str,
    opcode: int,
    payload: bytes,
    same: Callable[[bytes], bool],
    messages: int,
) -> Figures:
    """Open the connections, check one echo each, warm up, then measure the round trips."""
    connections = await open_connections(server.port, path, settings.connections)
    frame = masked_frame(opcode, payload)
    try:
        for connection in connections:
            reply = await asyncio.wait_for(connection.round_trip(frame), 10)
            if not same(reply):
                raise RuntimeError(f"{server.kind} echoed {reply[:80]!r} for {payload[:80]!r}")
        deadline = time.perf_counter() + settings.time_limit
        await asyncio.gather(
            *(c.round_trips(frame, settings.warmup_messages, deadline, None) for c in connections)
        )
        latencies: list[float] = []
        deadline = time.perf_counter() + settings.time_limit
        server_cpu, client_cpu, wall = (
            server.cpu_seconds(),
            time.process_time(),
            time.perf_counter(),
        )
        counts = await asyncio.gather(
            *(c.round_trips(frame, messages, deadline, latencies.append) for c in connections)
        )
        wall = time.perf_counter() - wall
        server_cpu = server.cpu_seconds() - server_cpu
        client_cpu = time.process_time() - client_cpu
    finally:
        await close_all(connections)
    count = sum(counts)
    percentiles = statistics.quantiles(latencies, n=100, method="inclusive")
    return {
        CPU.key: server_cpu / count * 1e6,
        P50.key: percentiles[49] * 1e6,
        P99.key: percentiles[98] * 1e6,
        "messages": count,
        "server_busy": server_cpu / wall,
        "client_busy": client_cpu / wall,
    }


async def _text(server: ServerProcess, settings: Settings) -> Figures:
    return await run_echo(
        server,
        settings,
        path="/text",
        opcode=OP_TEXT,
        payload=TEXT_PAYLOAD,
        same=TEXT_PAYLOAD.__eq__,
        messages=settings.messages,
    )


async def _json(server: ServerProcess, settings: Settings) -> Figures:
    expected = json.loads(JSON_PAYLOAD)
    return await run_echo(
        server,
        settings,
        path="/json",
        opcode=OP_TEXT,
        payload=JSON_PAYLOAD,
        same=lambda reply: json.loads(reply) == expected,
        messages=settings.messages,
    )


async def _binary(server: ServerProcess, settings: Settings) -> Figures:
    return await run_echo(
        server,
        settings,
        path="/bytes",
        opcode=OP_BINARY,
        payload=BINARY_PAYLOAD,
        same=BINARY_PAYLOAD.__eq__,
        messages=max(1, settings.messages // 2),
    )


#: What the defaults cost: raw aiohttp with aioendpoints' default heartbeat, and
#: aioendpoints with its default heartbeat and send guard switched off.
WITHOUT_DEFAULTS = ("aiohttp-heartbeat", "function-no-heartbeat", "function-bare")
#: What the optional features cost per message when they are on.
WITH_FEATURES = (
    "function-metrics",
    "function-auth",
    "function-tracing",
    "function-tracing-messages",
    "function-tracing-unsampled",
)

register(
    Scenario(
        "echo-text",
        "echo of 64-byte text messages",
        (CPU, P50, P99),
        _text,
        extra_kinds=(*WITHOUT_DEFAULTS, *WITH_FEATURES),
    )
)
register(
    Scenario(
        "echo-json",
        f"echo of a {len(JSON_PAYLOAD)}-byte JSON object (decoded and encoded again)",
        (CPU,),
        _json,
        extra_kinds=("function-stdlib-json", *WITH_FEATURES),
    )
)
register(
    Scenario(
        "echo-bytes",
        "echo of 16 KiB binary messages",
        (CPU,),
        _binary,
        extra_kinds=(*WITHOUT_DEFAULTS, *WITH_FEATURES),
    )
)
