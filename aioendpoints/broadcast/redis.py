"""``redis://host:port/db``: groups across processes and machines over Redis pub/sub.

One process holds one pub/sub connection, shared by every group and every socket, plus a
small pool for publishing. When Redis goes away the subscription is re-established with
backoff and the gap is logged; publishing meanwhile raises :class:`BroadcastUnavailable`.
What groups with history published during the gap is read back from their streams once
the subscription is back, and delivered before the live messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import struct
import time
from typing import Any

from yarl import URL

from . import redis_history
from .backend import BroadcastBackend, BroadcastUnavailable, Receiver
from .frames import MAX_INBOUND_SIZE, TEXT, inbound_problem
from .history import History, HistoryRead, Position
from .presence import PRESENCE_TTL, PresenceStore
from .redis_presence import RedisPresence

try:
    from redis.asyncio import Redis
    from redis.asyncio.client import PubSub
    from redis.asyncio.connection import BlockingConnectionPool
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff
    from redis.commands.core import AsyncScript
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import RedisError
except ImportError as error:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "a redis:// broadcast URL needs the Redis client: pip install 'aioendpoints[redis]'"
    ) from error

__all__ = ["RedisBackend"]

logger = logging.getLogger("aioendpoints.broadcast")

_ORIGIN_SIZE = 8  # random bytes naming the publishing process in every message
POOL_SIZE = 100  # connections for commands, per process (the pub/sub one is apart)
_SENT_AT = struct.Struct("!d")  # then when it was published, in seconds since the epoch
_HEADER_SIZE = _ORIGIN_SIZE + _SENT_AT.size


class RedisBackend(BroadcastBackend):
    """Publishes to and subscribes from Redis channels named after the groups.

    Channels are ``aioendpoints:<db>:group:<group>``: Redis pub/sub ignores the database
    number, so it is part of the name to keep apps on different databases apart. Anyone
    who can reach Redis can publish there, so what is read is checked before it reaches
    a socket (text or binary frames, valid UTF-8, ``max_message_size``); anything else is
    dropped, and logged once per channel.
    """

    distributed = True

    def __init__(
        self,
        url: str,
        *,
        # Timeouts, in seconds
        connect_timeout: float = 5.0,
        command_timeout: float = 5.0,
        subscribe_timeout: float = 5.0,
        health_check_interval: float = 15.0,
        # Presence: seconds before a stopped process's entries are gone
        presence_ttl: float = PRESENCE_TTL,
        # Reconnection backoff, in seconds
        reconnect_delay: float = 0.1,
        max_reconnect_delay: float = 5.0,
        # Messages
        max_message_size: int = MAX_INBOUND_SIZE,
    ) -> None:
        self.url = url
        #: Seconds to wait for a TCP connection to Redis.
        self.connect_timeout = connect_timeout
        #: Seconds to wait for Redis to answer a command such as PUBLISH.
        self.command_timeout = command_timeout
        #: Seconds to wait for Redis to confirm a subscription.
        self.subscribe_timeout = subscribe_timeout
        #: After this many quiet seconds the subscription connection is pinged; no answer
        #: within as many seconds again counts as a lost connection (a frozen Redis or a
        #: half-open TCP connection sends no error of its own).
        self.health_check_interval = health_check_interval
        #: Seconds before the first reconnection attempt; doubled after each failure.
        self.reconnect_delay = reconnect_delay
        #: The longest wait between reconnection attempts, in seconds.
        self.max_reconnect_delay = max_reconnect_delay
        #: Seconds after which the presence entries of a process that stopped refreshing
        #: them (it died) are gone; refreshed three times as often.
        self.presence_ttl = presence_ttl
        #: Payloads larger than this, in bytes, are refused when published, and dropped
        #: when read from Redis.
        self.max_message_size = max_message_size
        #: How many messages read from Redis were dropped as not aioendpoints' own.
        self.rejected = 0
        self._warned_channels: set[bytes] = set()
        self._where = _redacted(url)
        self._origin = os.urandom(_ORIGIN_SIZE)
        self._client: Redis | None = None
        self._pubsub: PubSub | None = None
        self._reader: asyncio.Task[None] | None = None
        self._receive: Receiver | None = None
        self._connected = False
        self._group_prefix = b""
        self._prefix = b""
        self._append: AsyncScript | None = None
        self._read: AsyncScript | None = None
        self._control_channel = b""
        self._wanted: set[bytes] = set()
        self._confirmations: dict[bytes, list[asyncio.Future[None]]] = {}

    def __repr__(self) -> str:
        return f"<RedisBackend {self._where}>"

    # Lifecycle ---------------------------------------------------------------------------

    async def start(self, receive: Receiver) -> None:
        """Connect to Redis and open the process's one pub/sub connection."""
        self._receive = receive
        # No retries inside redis-py: reconnection is ours, so that each gap is seen and
        # logged, and a publish that cannot reach Redis fails at once instead of later.
        # A blocking pool: past its size, a command waits for a free connection (up to
        # command_timeout) instead of failing, however many joins and publishes run at once.
        pool = BlockingConnectionPool.from_url(
            self.url,
            max_connections=POOL_SIZE,
            timeout=self.command_timeout,
            retry=Retry(NoBackoff(), 0),
            socket_connect_timeout=self.connect_timeout,
            socket_timeout=self.command_timeout,
            socket_keepalive=True,
        )
        client = Redis(connection_pool=pool, retry=Retry(NoBackoff(), 0))
        self._client = client
        database = client.connection_pool.connection_kwargs.get("db", 0)
        prefix = self._prefix = f"aioendpoints:{database}:".encode()
        self._append = client.register_script(redis_history.APPEND)
        self._read = client.register_script(redis_history.READ)
        self._group_prefix = prefix + b"group:"
        self._control_channel = prefix + b"process:" + self._origin.hex().encode()
        try:
            await client.ping()
            self._pubsub = await self._open_subscription()
        except _REDIS_ERRORS as error:
            await client.aclose(close_connection_pool=True)
            self._client = None
            raise BroadcastUnavailable(f"cannot reach Redis at {self._where}: {error}") from error
        self._connected = True
        self._reader = asyncio.create_task(self._read_forever(), name="aioendpoints-redis-reader")

    async def stop(self) -> None:
        """Cancel the reader and close the pub/sub connection and the pool."""
        self._connected = False
        if self._reader is not None:
            self._reader.cancel()
            # gather() returns the reader's CancelledError instead of raising it, while a
            # cancellation of stop() itself still propagates.
            await asyncio.gather(self._reader, return_exceptions=True)
            self._reader = None
        if self._pubsub is not None:
            await _close_quietly(self._pubsub)
            self._pubsub = None
        if self._client is not None:
            await self._client.aclose(close_connection_pool=True)
            self._client = None
        self._fail_confirmations("the broadcast backend stopped")

    # Subscriptions -----------------------------------------------------------------------

    async def subscribe(self, group: str) -> None:
        """Subscribe to ``group``'s channel and wait for Redis to confirm it."""
        if not self._connected or self._pubsub is None:
            raise BroadcastUnavailable(
                f"cannot join group {group!r}: no connection to Redis at {self._where}"
            )
        channel = self._group_prefix + group.encode()
        confirmed = asyncio.get_running_loop().create_future()
        waiting = self._confirmations.setdefault(channel, [])
        waiting.append(confirmed)
        self._wanted.add(channel)
        try:
            await self._pubsub.subscribe(channel)
            async with asyncio.timeout(self.subscribe_timeout):
                await confirmed
        except (*_REDIS_ERRORS, BroadcastUnavailable) as error:
            self._wanted.discard(channel)
            raise BroadcastUnavailable(
                f"cannot join group {group!r}: Redis at {self._where} did not confirm ({error})"
            ) from error
        finally:
            waiting.remove(confirmed)
            if not waiting:
                self._confirmations.pop(channel, None)
            if confirmed.done() and not confirmed.cancelled():
                # Failed by a lost connection while the SUBSCRIBE itself was still being
                # sent (and then failed or was cancelled): nobody awaited it, so its
                # exception is retrieved here rather than logged as never retrieved.
                confirmed.exception()

    async def unsubscribe(self, group: str) -> None:
        """Unsubscribe from ``group``'s channel; while disconnected, just forget it."""
        channel = self._group_prefix + group.encode()
        self._wanted.discard(channel)
        if self._connected and self._pubsub is not None:
            # A failure here means the connection is gone: the reader reconnects
            # without this channel, which is all an unsubscribe has to achieve.
            with contextlib.suppress(*_REDIS_ERRORS):
                await self._pubsub.unsubscribe(channel)

    # Publishing --------------------------------------------------------------------------

    async def publish(self, group: str, opcode: int, payload: bytes) -> None:
        """Publish to ``group``'s channel; raise :class:`BroadcastUnavailable` on failure."""
        if self._client is None:
            raise BroadcastUnavailable(
                f"cannot publish to group {group!r}: the Redis backend is not running "
                "(the application has not started, or has stopped)"
            )
        if len(payload) > self.max_message_size:
            raise ValueError(
                f"cannot publish {len(payload)} bytes to group {group!r}: over the Redis "
                f"backend's max_message_size of {self.max_message_size}"
            )
        sent_at = _SENT_AT.pack(time.time())
        message = b"".join((self._origin, sent_at, opcode.to_bytes(1, "big"), payload))
        try:
            await self._client.publish(self._group_prefix + group.encode(), message)
        except _REDIS_ERRORS as error:
            raise BroadcastUnavailable(
                f"cannot publish to group {group!r}: Redis at {self._where} failed ({error})"
            ) from error

    def presence_store(self) -> PresenceStore:
        """This process's presence entries in Redis, refreshed while the app runs."""
        if self._client is None:
            raise BroadcastUnavailable("the Redis backend is not running")
        return RedisPresence(
            self._client,
            self._prefix,
            self._origin.hex(),
            ttl=self.presence_ttl,
            refresh_interval=self.presence_ttl / 3,
        )

    # History -----------------------------------------------------------------------------

    async def append(
        self, group: str, data: bytes, history: History, *, exclusion: int = 0
    ) -> Position:
        """Number, keep and publish ``data`` in one script; the reader delivers it here too."""
        if self._append is None or self._client is None:
            raise BroadcastUnavailable(
                f"cannot publish to group {group!r}: the Redis backend is not running "
                "(the application has not started, or has stopped)"
            )
        meta, stream = redis_history.keys(self._prefix, group)
        header = b"".join(
            (
                self._origin,
                _SENT_AT.pack(time.time()),
                bytes((redis_history.POSITIONED,)),
                exclusion.to_bytes(8, "big"),
            )
        )
        try:
            epoch, offset = await self._append(
                keys=[meta, stream, self._group_prefix + group.encode()],
                args=redis_history.append_arguments(data, history, header),
            )
        except _REDIS_ERRORS as error:
            raise BroadcastUnavailable(
                f"cannot publish to group {group!r}: Redis at {self._where} failed ({error})"
            ) from error
        return Position(epoch.decode(), int(offset))

    async def read(
        self, group: str, history: History, since: Position | None, *, entries: bool = True
    ) -> HistoryRead:
        """The group's latest position and its kept messages after ``since``, from Redis."""
        read = await self._read_once(group, history, since, entries)
        if entries and since is not None and since.epoch != read.latest.epoch:
            read = await self._read_once(group, history, None, entries)  # another epoch
        return read

    async def _read_once(
        self, group: str, history: History, since: Position | None, entries: bool
    ) -> HistoryRead:
        if self._read is None or self._client is None:
            raise BroadcastUnavailable(
                f"cannot read group {group!r}: the Redis backend is not running"
            )
        meta, stream = redis_history.keys(self._prefix, group)
        arguments = redis_history.read_arguments(history, since, entries)
        try:
            try:
                result = await self._read(keys=[meta, stream], args=arguments)
            except (RedisConnectionError, ConnectionError):
                # A pooled connection from before a Redis restart fails on first use;
                # reading again is harmless, where publishing again could send twice.
                result = await self._read(keys=[meta, stream], args=arguments)
        except _REDIS_ERRORS as error:
            raise BroadcastUnavailable(
                f"cannot read group {group!r}: Redis at {self._where} failed ({error})"
            ) from error
        return redis_history.read_result(result, history)

    # The reader --------------------------------------------------------------------------

    async def _open_subscription(self) -> PubSub:
        """A new pub/sub connection, subscribed to every wanted channel, confirmed."""
        assert self._client is not None
        pubsub = self._client.pubsub()
        channels = {self._control_channel, *self._wanted}
        try:
            await pubsub.subscribe(*channels)
            async with asyncio.timeout(self.subscribe_timeout):
                while channels:
                    message = await pubsub.get_message(timeout=None)
                    if message is not None and message["type"] == "subscribe":
                        channels.discard(message["channel"])
                    elif message is not None:
                        self._handle(message)
        except BaseException:
            await _close_quietly(pubsub)
            raise
        return pubsub

    async def _read_forever(self) -> None:
        while True:
            pubsub = self._pubsub
            assert pubsub is not None
            try:
                message = await pubsub.get_message(timeout=self.health_check_interval)
                if message is None:
                    await self._check_alive(pubsub)
                    continue
            except _REDIS_ERRORS as error:
                await self._recover(error)
                continue
            self._handle(message)

    async def _check_alive(self, pubsub: PubSub) -> None:
        """PING a quiet subscription; raise TimeoutError if Redis does not answer in time."""
        await pubsub.ping()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.health_check_interval
        while (remaining := deadline - loop.time()) > 0:
            message = await pubsub.get_message(timeout=remaining)
            if message is None:
                continue
            if message["type"] == "pong":
                return
            self._handle(message)
        raise TimeoutError(f"Redis did not answer a PING within {self.health_check_interval} s")

    async def _recover(self, error: BaseException) -> None:
        """Reconnect with backoff after the subscription dropped, logging the gap."""
        loop = asyncio.get_running_loop()
        lost_at = loop.time()
        self._connected = False
        logger.warning(
            "Lost the Redis subscription at %s (%s); reconnecting. Messages published "
            "until it is back will not reach this process, but those of groups with "
            "history, read back from Redis once it is.",
            self._where,
            error or type(error).__name__,
        )
        self._fail_confirmations(f"lost the connection to Redis at {self._where}")
        if self._pubsub is not None:
            await _close_quietly(self._pubsub)
            self._pubsub = None
        delay = self.reconnect_delay
        attempts = 0
        while True:
            await asyncio.sleep(delay)
            attempts += 1
            try:
                self._pubsub = await self._open_subscription()
            except _REDIS_ERRORS as retry_error:
                logger.debug("Redis at %s still unreachable: %s", self._where, retry_error)
                delay = min(delay * 2, self.max_reconnect_delay)
                continue
            break
        self._connected = True
        logger.warning(
            "Redis subscription at %s restored after a gap of %.2f s (%d attempt(s), "
            "%d group(s) re-subscribed); messages published during the gap were lost "
            "for this process, but those of groups with history, read back from Redis.",
            self._where,
            loop.time() - lost_at,
            attempts,
            len(self._wanted),
        )
        if self.on_resubscribed is not None:
            # The reader waits: what arrives on the new subscription is delivered after
            # the gap's messages, and dropped when the gap's reading had it.
            try:
                await self.on_resubscribed()
            except Exception:
                logger.exception("Error delivering what was published during the gap")

    def _handle(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "pong":
            return
        channel: bytes = message["channel"]
        if kind == "message":
            data: bytes = message["data"]
            if len(data) > _HEADER_SIZE and data[_HEADER_SIZE] == redis_history.POSITIONED:
                self._handle_positioned(channel, data)
                return
            if data[:_ORIGIN_SIZE] == self._origin or not channel.startswith(self._group_prefix):
                return  # our own message: this process delivered it when publishing
            if len(data) <= _HEADER_SIZE:
                self._reject(channel, f"{len(data)} bytes is too short for a message")
                return
            problem = inbound_problem(
                data[_HEADER_SIZE], data[_HEADER_SIZE + 1 :], self.max_message_size
            )
            if problem is not None:
                # Whatever Redis hands over is input from outside: a stray PUBLISH on the
                # channel must not write a close frame or invalid text to every member.
                self._reject(channel, problem)
                return
            assert self._receive is not None
            group = channel[len(self._group_prefix) :].decode()
            if self.on_lag is not None:
                # Wall clocks of two machines: negative when they disagree.
                lag = time.time() - _SENT_AT.unpack_from(data, _ORIGIN_SIZE)[0]
                self.on_lag(max(lag, 0.0))
            try:
                self._receive(group, data[_HEADER_SIZE], data[_HEADER_SIZE + 1 :])
            except Exception:
                logger.exception("Error delivering a broadcast message to group %r", group)
        elif kind == "subscribe":
            for confirmed in self._confirmations.get(channel, ()):
                if not confirmed.done():
                    confirmed.set_result(None)

    def _reject(self, channel: bytes, problem: str) -> None:
        """Drop a message that did not come from aioendpoints; warn once per channel."""
        self.rejected += 1
        first = channel not in self._warned_channels
        if first:
            self._warned_channels.add(channel)
        logger.log(
            logging.WARNING if first else logging.DEBUG,
            "Dropped a message on %r that aioendpoints did not publish (%s)%s",
            channel,
            problem,
            "; further ones on this channel are logged at DEBUG" if first else "",
        )

    def _handle_positioned(self, channel: bytes, data: bytes) -> None:
        """A message of a group with history: every process delivers it, this one too."""
        if not channel.startswith(self._group_prefix) or self.history_receiver is None:
            return
        group = channel[len(self._group_prefix) :].decode()
        body = _HEADER_SIZE + 1 + 8
        exclusion = 0
        if data[:_ORIGIN_SIZE] == self._origin:
            exclusion = int.from_bytes(data[_HEADER_SIZE + 1 : body], "big")
        try:
            position, payload = redis_history.parse_message(data[body:])
        except ValueError:
            self._reject(channel, "it is not a numbered message")
            return
        problem = inbound_problem(TEXT, payload, self.max_message_size)
        if problem is not None:
            self._reject(channel, problem)
            return
        try:
            self.history_receiver(group, position, payload, exclusion)
        except Exception:
            logger.exception("Error delivering a broadcast message to group %r", group)

    def _fail_confirmations(self, reason: str) -> None:
        for waiting in self._confirmations.values():
            for confirmed in waiting:
                if not confirmed.done():
                    confirmed.set_exception(BroadcastUnavailable(reason))


# What a lost or refused connection raises; TimeoutError (asyncio's too) is an OSError.
_REDIS_ERRORS = (RedisError, OSError)


async def _close_quietly(pubsub: PubSub) -> None:
    with contextlib.suppress(*_REDIS_ERRORS):
        await pubsub.aclose()  # type: ignore[no-untyped-call]


def _redacted(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parsed = URL(url)
    return str(parsed.with_password("***")) if parsed.password else url
