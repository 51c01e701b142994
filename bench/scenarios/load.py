"""Opening and closing many client connections, in bounded batches."""

from __future__ import annotations

import asyncio

from ..client import Connection, connect

__all__ = ["close_all", "open_connections"]

HOST = "127.0.0.1"
#: Handshakes in flight at once: below the servers' listen backlogs.
_BATCH = 100


async def open_connections(
    port: int, path: str, count: int, wait: float = 10.0
) -> list[Connection]:
    """Open ``count`` WebSocket connections to ``path``, ``_BATCH`` handshakes at a time.

    Each handshake may take ``wait`` seconds (more under valgrind).
    """
    connections: list[Connection] = []
    try:
        for start in range(0, count, _BATCH):
            batch = min(_BATCH, count - start)
            connections += await asyncio.gather(
                *(connect(HOST, port, path, wait) for _ in range(batch))
            )
    except BaseException:
        await close_all(connections)
        raise
    return connections


async def close_all(connections: list[Connection]) -> None:
    """Close every connection with 1000, ``_BATCH`` at a time."""
    for start in range(0, len(connections), _BATCH):
        await asyncio.gather(*(c.close() for c in connections[start : start + _BATCH]))
