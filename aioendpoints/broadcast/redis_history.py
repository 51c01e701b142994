"""History in Redis: one stream per group, numbered and published by one script.

Each group with history has two keys, in one hash slot (the ``{...}`` tag):

* ``aioendpoints:<db>:history:{<group>}:meta``, a hash with the group's ``epoch`` and last
  ``offset``; it lives a day (or ``ttl``, if longer) after the group's last message;
* ``aioendpoints:<db>:history:{<group>}:stream``, a stream whose entry IDs are
  ``<offset>-0``, each with the time Redis added it (``t``, ms) and the JSON data (``d``);
  ``XADD ... MAXLEN`` keeps ``size`` entries, the key expires ``ttl`` after the last one,
  and entries older than ``ttl`` are skipped when read.

The append script increments the offset, adds the entry and publishes it on the group's
channel in one atomic step, so every process receives a group's messages in offset order,
and the offsets grow by exactly one whatever the number of publishers. When Redis loses
the keys (restart without persistence, FLUSHDB, expiry), the next script run starts a new
epoch.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from .history import History, HistoryRead, Position

__all__: list[str] = []

#: Marks a message of a group with history on a group's channel, where the opcode byte
#: of a plain message is (0x80 is no WebSocket opcode).
POSITIONED = 0x80

#: How long a group's epoch and offset outlive its last message, at least.
META_TTL = 24 * 3600

# KEYS: meta, stream, channel.
# ARGV: new epoch, data, size, ttl (ms), meta ttl (s), message header.
APPEND = """
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
    epoch = ARGV[1]
    redis.call('HSET', KEYS[1], 'epoch', epoch)
end
local offset = redis.call('HINCRBY', KEYS[1], 'offset', 1)
redis.call('EXPIRE', KEYS[1], ARGV[5])
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[3], offset .. '-0', 't', ms, 'd', ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
redis.call('PUBLISH', KEYS[3], ARGV[6] .. epoch .. '\\n' .. offset .. '\\n' .. ARGV[2])
return {epoch, offset}
"""

# KEYS: meta, stream.
# ARGV: new epoch, meta ttl (s), first entry ID to read or '' for none.
READ = """
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
    epoch = ARGV[1]
    redis.call('HSET', KEYS[1], 'epoch', epoch, 'offset', 0)
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
local offset = redis.call('HGET', KEYS[1], 'offset')
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local entries = {}
if ARGV[3] ~= '' then
    entries = redis.call('XRANGE', KEYS[2], ARGV[3], '+')
end
return {epoch, offset, ms, entries}
"""


def keys(prefix: bytes, group: str) -> tuple[bytes, bytes]:
    """The meta hash's and the stream's keys for ``group``."""
    base = prefix + b"history:{" + group.encode() + b"}:"
    return base + b"meta", base + b"stream"


def new_epoch() -> str:
    """A fresh epoch: random, so that it differs from every earlier one of the group."""
    return secrets.token_hex(8)


def append_arguments(data: bytes, history: History, header: bytes) -> list[bytes | str | int]:
    """The APPEND script's ARGV."""
    return [
        new_epoch(),
        data,
        history.size,
        max(1, round(history.ttl * 1000)),
        max(META_TTL, round(history.ttl)),
        header,
    ]


def read_arguments(
    history: History, since: Position | None, entries: bool
) -> list[bytes | str | int]:
    """The READ script's ARGV: read the entries after ``since`` (all without it)."""
    first = ""
    if entries:
        first = "-" if since is None else f"{since.offset + 1}-0"
    return [new_epoch(), max(META_TTL, round(history.ttl)), first]


def read_result(result: Sequence[object], history: History) -> HistoryRead:
    """The READ script's answer as a :class:`HistoryRead`, expired entries left out."""
    raw_epoch, raw_offset, raw_now, raw_entries = result
    assert isinstance(raw_epoch, bytes)
    assert isinstance(raw_entries, list)
    epoch = raw_epoch.decode()
    latest = Position(epoch, int(raw_offset))  # type: ignore[call-overload]
    oldest = int(raw_now) - history.ttl * 1000  # type: ignore[call-overload]
    kept: list[tuple[int, bytes]] = []
    for entry_id, fields in raw_entries:
        values = dict(zip(fields[::2], fields[1::2], strict=True))
        if int(values[b"t"]) >= oldest:
            kept.append((int(entry_id.split(b"-", 1)[0]), values[b"d"]))
    return HistoryRead(latest, kept)


def parse_message(body: bytes) -> tuple[Position, bytes]:
    """A positioned message's body (after its header) as its position and data."""
    epoch, offset, data = body.split(b"\n", 2)
    return Position(epoch.decode(), int(offset)), data
