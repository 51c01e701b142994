"""Idle memory: the server's resident memory per open connection."""

from __future__ import annotations

import asyncio

from ..client import OP_TEXT, masked_frame
from ..process import ServerProcess
from . import Figures, Metric, Scenario, Settings, register
from .echo import WITHOUT_DEFAULTS
from .load import close_all, open_connections

MEMORY = Metric("kib_per_connection", "idle memory per connection", "KiB", compare="difference")
_WARMUP_CONNECTIONS = 20
_SETTLE_SECONDS = 0.5


async def _idle_memory(server: ServerProcess, settings: Settings) -> Figures:
    """RSS growth from opening the connections (each echoes once) divided by their count."""
    frame = masked_frame(OP_TEXT, b"hello")
    # Warm up first so imports and first-use caches are not counted as per-connection cost.
    warmup = await open_connections(server.port, "/text", _WARMUP_CONNECTIONS)
    await asyncio.gather(*(c.round_trip(frame) for c in warmup))
    await close_all(warmup)
    await asyncio.sleep(_SETTLE_SECONDS)
    before = server.rss_bytes()
    connections = await open_connections(server.port, "/text", settings.memory_connections)
    try:
        # One round trip each: every handler is now parked, waiting for its next message.
        await asyncio.wait_for(asyncio.gather(*(c.round_trip(frame) for c in connections)), 60)
        await asyncio.sleep(_SETTLE_SECONDS)
        after = server.rss_bytes()
    finally:
        await close_all(connections)
    return {MEMORY.key: (after - before) / len(connections) / 1024}


register(
    Scenario(
        "idle-memory",
        "resident memory per open, idle connection",
        (MEMORY,),
        _idle_memory,
        extra_kinds=WITHOUT_DEFAULTS,
    )
)
