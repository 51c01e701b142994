"""Presence in Redis: each process's entries under keys that expire unless refreshed.

For each group with presence, ``aioendpoints:<db>:presence:{<group>}`` is a sorted set of
the processes that have members in it, scored by the time (ms) their entries expire, and
``aioendpoints:<db>:presence:{<group>}:<process>`` a hash of that process's connection ids
and presence data, expiring at the same time. Each process rewrites its own entries every
``refresh_interval`` seconds (so they come back after a Redis restart); those of a process
that stopped are gone after ``ttl`` seconds.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from .presence import PRESENCE_TTL, REFRESH_INTERVAL, PresenceStore

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__: list[str] = []

logger = logging.getLogger("aioendpoints.broadcast")

# KEYS: processes, this process's hash. ARGV: ttl (ms), process, then connection/data pairs.
WRITE = """
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
if #ARGV > 2 then
    redis.call('HSET', KEYS[2], unpack(ARGV, 3))
end
redis.call('PEXPIRE', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[1], ms + tonumber(ARGV[1]), ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
"""

# KEYS: processes. ARGV: the hashes' key prefix.
READ = """
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ms)
local result = {}
for _, process in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
    local entries = redis.call('HGETALL', ARGV[1] .. process)
    for i = 1, #entries do
        result[#result + 1] = entries[i]
    end
end
return result
"""


class RedisPresence(PresenceStore):
    """This process's presence entries in Redis, refreshed by one task."""

    def __init__(
        self,
        client: Redis,
        prefix: bytes,
        process: str,
        *,
        ttl: float = PRESENCE_TTL,
        refresh_interval: float = REFRESH_INTERVAL,
    ) -> None:
        self._client = client
        self._prefix = prefix + b"presence:"
        self._process = process
        self.ttl = ttl
        self.refresh_interval = refresh_interval
        self._write = client.register_script(WRITE)
        self._read = client.register_script(READ)
        self._local: dict[str, dict[str, bytes]] = {}
        self._refresher: asyncio.Task[None] | None = None

    def _keys(self, group: str) -> tuple[bytes, bytes]:
        processes = self._prefix + b"{" + group.encode() + b"}"
        return processes, processes + b":" + self._process.encode()

    async def start(self) -> None:
        """Start the task that refreshes this process's entries."""
        self._refresher = asyncio.create_task(self._refresh_forever())

    async def stop(self) -> None:
        """Stop refreshing and take this process's entries out of Redis."""
        if self._refresher is not None:
            self._refresher.cancel()
            await asyncio.gather(self._refresher, return_exceptions=True)
            self._refresher = None
        groups = list(self._local)
        self._local.clear()
        if not groups:
            return
        # One round trip for every group, so that a frozen Redis costs one command
        # timeout, not two per group; what fails expires within ttl anyway.
        pipeline = self._client.pipeline(transaction=False)
        for group in groups:
            processes, own = self._keys(group)
            pipeline.delete(own)
            pipeline.zrem(processes, self._process)
        try:
            await pipeline.execute(raise_on_error=False)
        except Exception as error:
            logger.warning(
                "Could not take this process's presence out of %d group(s): %s "
                "(it expires within %s s)",
                len(groups),
                error,
                self.ttl,
            )

    async def add(self, group: str, connection: str, data: bytes) -> None:
        """Write ``connection``'s entry, and refresh this process's others in ``group``."""
        self._local.setdefault(group, {})[connection] = data
        await self._write_group(group, {connection: data})

    async def remove(self, group: str, connection: str) -> None:
        """Delete ``connection``'s entry."""
        listed = self._local.get(group)
        if listed is None or listed.pop(connection, None) is None:
            return
        if not listed:
            del self._local[group]
        await self._client.hdel(self._keys(group)[1], connection)

    async def members(self, group: str) -> dict[str, bytes]:
        """Every live process's entries for ``group``."""
        processes, _ = self._keys(group)
        flat: list[Any] = await self._read(
            keys=[processes], args=[self._prefix + b"{" + group.encode() + b"}:"]
        )
        return {flat[i].decode(): flat[i + 1] for i in range(0, len(flat), 2)}

    async def _write_group(self, group: str, entries: dict[str, bytes]) -> None:
        pairs: list[str | bytes] = []
        for connection, data in entries.items():
            pairs += [connection, data]
        await self._write(
            keys=list(self._keys(group)),
            args=[max(1, round(self.ttl * 1000)), self._process, *pairs],
        )

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_interval)
            for group, entries in list(self._local.items()):
                try:
                    await self._write_group(group, dict(entries))
                except Exception as error:  # Redis down: the next round tries again
                    logger.warning("Could not refresh presence in %r: %s", group, error)
