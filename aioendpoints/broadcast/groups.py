"""Group membership and fan-out: who is in which group in this process, and writing to them.

A message is serialised once and framed once; the same frame bytes are written to each
member's transport without waiting, so one slow or dead member never delays the others.
What a member has not read yet stays in its transport's buffer. A member that stays over
:attr:`Broadcast.buffer_limit` for :attr:`Broadcast.slow_member_timeout` seconds, or goes
over four times the limit, is handed to the slow-member policy and gets no more messages.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final

from aiohttp import web

from ..close_codes import CloseCode
from ..exceptions import WebSocketDisconnect
from ..group_hub import GROUP_HUB_KEY, check_group_name
from ..request_keys import GROUP_CHECK_KEY, app_value
from ..serialization import JSONDumps, default_dumps
from .backend import BroadcastBackend
from .frames import TEXT, Message, encode_message, server_frame
from .history import (
    History,
    HistorySettings,
    Joining,
    Position,
    Recovery,
    envelope,
    history_payload,
    recovered,
)
from .presence import EVENTS_PREFIX, PresenceStore, presence_event
from .slow_members import SlowMemberPolicy, close_slow_member
from .urls import backend_for_url

if TYPE_CHECKING:
    from ..websocket import WebSocket

__all__ = [
    "BROADCAST_KEY",
    "DEFAULT_BUFFER_LIMIT",
    "Broadcast",
    "broadcast_of",
    "group_members",
    "history",
    "presence",
    "publish",
]

logger = logging.getLogger("aioendpoints.broadcast")

#: What :meth:`Broadcast.join` and a connection's publish await first (it raises to
#: refuse), when the handshake request has one under ``GROUP_CHECK_KEY``.
GroupCheck = Callable[["WebSocket", str], Awaitable[None]]

#: Default bytes a member may leave unread for a while (512 KiB).
DEFAULT_BUFFER_LIMIT = 512 * 1024
#: Default seconds a member may stay over the buffer limit.
DEFAULT_SLOW_MEMBER_TIMEOUT = 2.0
#: Over this many times the buffer limit, a member is slow at once: memory stays bounded.
HARD_LIMIT_FACTOR = 4


class Broadcast:
    """The groups of one application: local membership, fan-out, and a backend.

    :func:`aioendpoints.setup` makes one from its ``broadcast`` URL; build one yourself
    to change how slow members are handled::

        aioendpoints.setup(app, broadcast=Broadcast(
            "redis://127.0.0.1:6379/0",
            buffer_limit=64 * 1024,
            slow_member_timeout=5.0,
            on_slow_member=close_slow_member(CloseCode.POLICY_VIOLATION),
        ))
    """

    def __init__(
        self,
        backend: str | BroadcastBackend = "memory://",
        *,
        buffer_limit: int = DEFAULT_BUFFER_LIMIT,
        slow_member_timeout: float = DEFAULT_SLOW_MEMBER_TIMEOUT,
        on_slow_member: SlowMemberPolicy | None = None,
        dumps: JSONDumps = default_dumps,
        history: HistorySettings | None = None,
    ) -> None:
        if isinstance(backend, str):
            backend = backend_for_url(backend)
        elif not isinstance(backend, BroadcastBackend):
            raise TypeError(f"backend must be a URL or a BroadcastBackend, got {backend!r}")
        if isinstance(buffer_limit, bool) or not isinstance(buffer_limit, int) or buffer_limit < 0:
            raise ValueError(f"buffer_limit must be a non-negative int, got {buffer_limit!r}")
        if (
            isinstance(slow_member_timeout, bool)
            or not isinstance(slow_member_timeout, int | float)
            or slow_member_timeout < 0
        ):
            raise ValueError(
                f"slow_member_timeout must be a non-negative number, got {slow_member_timeout!r}"
            )
        if on_slow_member is not None and not callable(on_slow_member):
            raise TypeError(f"on_slow_member must be an async function, got {on_slow_member!r}")
        if history is not None and not isinstance(history, History) and not callable(history):
            raise TypeError(
                f"history must be a History or a function of the group name, got {history!r}"
            )
        #: Carries messages to and from the other processes.
        self.backend = backend
        #: Unsent bytes a member may have for up to :attr:`slow_member_timeout` seconds
        #: (and up to four times as many for no time at all).
        self.buffer_limit = buffer_limit
        #: Seconds a member may stay over :attr:`buffer_limit` before the policy applies.
        self.slow_member_timeout = float(slow_member_timeout)
        #: What to do with a member that stays behind; closes it with 1013 by default.
        self.on_slow_member = on_slow_member or close_slow_member()
        #: What history groups keep: a :class:`History` for all, a function of the group
        #: name returning one or ``None``, or ``None`` for no history (the default).
        self.history = history
        self._dumps = dumps
        self._members: dict[str, dict[WebSocket, asyncio.Transport]] = {}
        self._subscribed: set[str] = set()
        self._subscription_lock = asyncio.Lock()
        self._unused_groups: set[str] = set()
        self._joined: dict[WebSocket, tuple[str, ...]] = {}  # each member's groups
        self._pruner: asyncio.Task[None] | None = None
        self._policies: dict[WebSocket, asyncio.Task[None]] = {}
        self._over_limit_since: dict[WebSocket, float] = {}  # members behind, and since when
        #: Messages published from this process, and members handed to the slow-member
        #: policy, since it started (for metrics).
        self.published = 0
        self.slow_members = 0
        self._listeners: dict[str, Callable[[int, bytes], None]] = {}
        # Members of history groups still joining, and the live messages held back for them.
        self._joining: dict[str, dict[WebSocket, Joining]] = {}
        # The position of the last message of each history group delivered in this process.
        self._delivered: dict[str, Position] = {}
        # Publishers that excluded themselves, until their message comes back from Redis,
        # and the positions of those messages, once known, until then.
        self._exclusions: dict[int, WebSocket] = {}
        self._last_exclusion = 0
        self._excluded_at: dict[tuple[str, Position], int] = {}
        # Presence: the store, this process's name in connection ids, the groups where each
        # member is listed, the members that get presence events, and pending removals.
        self._presence: PresenceStore | None = None
        self._process = secrets.token_hex(4)
        self._listed: dict[WebSocket, set[str]] = {}
        self._watchers: dict[str, set[WebSocket]] = {}
        self._unlisting: set[asyncio.Task[None]] = set()

    def __repr__(self) -> str:
        return f"<Broadcast {self.backend!r} groups={len(self._members)}>"

    # Lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the backend (connect to Redis)."""
        self.backend.history_receiver = self._receive_from_backend
        self.backend.on_resubscribed = self._refill
        await self.backend.start(self._receive)
        self._presence = self.backend.presence_store()
        await self._presence.start()

    async def stop(self) -> None:
        """Stop the backend and every task this object started."""
        tasks = [*self._policies.values(), *([self._pruner] if self._pruner else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._pruner = None
        if self._unlisting:
            await asyncio.gather(*self._unlisting, return_exceptions=True)
        if self._presence is not None:
            await self._presence.stop()
            self._presence = None
        await self.backend.stop()
        self._subscribed.clear()

    async def cleanup_context(self, app: web.Application) -> AsyncIterator[None]:
        """For ``app.cleanup_ctx``: start with the application, stop after it."""
        await self.start()
        yield
        await self.stop()

    # Membership --------------------------------------------------------------------------

    def members(self, group: str) -> frozenset[WebSocket]:
        """This process's members of ``group``: those whose :meth:`join` has returned."""
        joining = self._joining.get(group)
        if joining:
            # A member still reading the history is not one yet: a message published
            # now may be in what it read and skipped as already replayed.
            joined = (websocket for websocket, member in joining.items() if member.joined)
            return frozenset((*self._members.get(group, ()), *joined))
        return frozenset(self._members.get(group, ()))

    @property
    def groups(self) -> frozenset[str]:
        """The groups that have members in this process."""
        if self._joining:
            joined = (
                group
                for group, joining in self._joining.items()
                if any(member.joined for member in joining.values())
            )
            return frozenset((*self._members, *joined))
        return frozenset(self._members)

    def groups_of(self, websocket: WebSocket) -> tuple[str, ...]:
        """The groups ``websocket`` has joined, in the order it joined them."""
        return self._joined.get(websocket, ())

    def history_of(self, group: str) -> History | None:
        """What ``group`` keeps, from :attr:`history`; ``None`` for no history."""
        settings = self.history
        if settings is None or isinstance(settings, History):
            return settings
        chosen = settings(group)
        if chosen is not None and not isinstance(chosen, History):
            raise TypeError(f"the history function gave {chosen!r} for group {group!r}")
        return chosen

    async def join(
        self,
        websocket: WebSocket,
        group: str,
        *,
        since: Position | str | None = None,
        presence: Mapping[str, Any] | None = None,
        presence_events: bool = False,
    ) -> Recovery | None:
        """Add ``websocket`` to ``group``; messages published after this returns reach it.

        For a group with history, replay what came after ``since`` first, and return the
        :class:`Recovery`; see :meth:`WebSocket.join`. With ``presence``, list the member
        in :meth:`presence_of`; with ``presence_events``, send it the group's presence
        events.
        """
        listed = None
        if presence is not None:
            if not isinstance(presence, Mapping):
                raise TypeError(f"presence must be a mapping (sent as JSON), got {presence!r}")
            listed = history_payload(dict(presence), self._dumps)
        recovery = await self._join(websocket, group, since)
        if presence_events:
            await self._subscribe(EVENTS_PREFIX + group)
            self._watchers.setdefault(group, set()).add(websocket)
        if listed is not None and group not in self._listed.get(websocket, ()):
            if self._presence is None:
                raise RuntimeError("presence needs the application to be running")
            connection = self.connection_id(websocket)
            await self._presence.add(group, connection, listed)
            self._listed.setdefault(websocket, set()).add(group)
            await self._announce(group, presence_event(group, "join", connection, listed))
        return recovery

    def connection_id(self, websocket: WebSocket) -> str:
        """The id that names ``websocket`` in presence, unique across processes."""
        return f"{self._process}-{websocket.id}"

    async def presence_of(self, group: str) -> dict[str, Any]:
        """The members of ``group`` listed with presence, in every process, and their data."""
        check_group_name(group)
        if self._presence is None:
            raise RuntimeError("presence needs the application to be running")
        listed = await self._presence.members(group)
        return {connection: json.loads(data) for connection, data in listed.items()}

    async def _announce(self, group: str, event: bytes) -> None:
        self._tell_watchers(group, event)
        if self.backend.distributed:
            await self.backend.publish(EVENTS_PREFIX + group, TEXT, event)

    def _tell_watchers(self, group: str, event: bytes) -> None:
        watchers = self._watchers.get(group)
        if watchers:
            frame = server_frame(TEXT, event)
            for websocket in watchers:
                transport = websocket.request.transport
                if transport is not None and not transport.is_closing():
                    transport.write(frame)

    async def _unlist(self, websocket: WebSocket, groups: Iterable[str]) -> None:
        if self._presence is None:
            return
        connection = self.connection_id(websocket)
        for group in groups:
            try:
                await self._presence.remove(group, connection)
                await self._announce(group, presence_event(group, "leave", connection, None))
            except Exception as error:  # the entry expires with this process's refreshes
                logger.warning("Could not remove presence from %r: %s", group, error)

    def _stop_watching(self, websocket: WebSocket, groups: Iterable[str]) -> list[str]:
        """Stop presence events for ``websocket``; the groups where it was listed."""
        for group in groups:
            watchers = self._watchers.get(group)
            if watchers is not None:
                watchers.discard(websocket)
                if not watchers:
                    del self._watchers[group]
        listed = self._listed.get(websocket)
        if not listed:
            return []
        gone = [group for group in groups if group in listed]
        listed.difference_update(gone)
        if not listed:
            del self._listed[websocket]
        return gone

    async def _join(
        self, websocket: WebSocket, group: str, since: Position | str | None
    ) -> Recovery | None:
        check_group_name(group)
        history = self.history_of(group)
        if isinstance(since, str):
            since = Position.parse(since)
        elif since is not None and not isinstance(since, Position):
            raise TypeError(f"since must be a Position, its str() or None, got {since!r}")
        if since is not None and history is None:
            raise ValueError(f"group {group!r} keeps no history: join it without since")
        websocket.check_open()  # raises unless accepted and open
        transport = websocket.request.transport
        if transport is None or transport.is_closing():
            raise WebSocketDisconnect(CloseCode.ABNORMAL_CLOSURE)
        if group not in self._joined.get(websocket, ()):
            check: GroupCheck | None = websocket.request.get(GROUP_CHECK_KEY)
            if check is not None:
                await check(websocket, group)
        if history is not None:
            return await self._join_with_history(websocket, group, transport, history, since)
        if group in self._joined.get(websocket, ()):
            return None
        await self._subscribe(group)
        # The connection may have ended, or joined, while the subscription was made.
        websocket.check_open()
        joined = self._joined.get(websocket, ())
        if group in joined:
            return None
        self._members.setdefault(group, {})[websocket] = transport
        self._joined[websocket] = (*joined, group)
        return None

    async def _subscribe(self, group: str) -> None:
        if group not in self._subscribed:
            async with self._subscription_lock:
                if group not in self._subscribed:
                    await self.backend.subscribe(group)
                    self._subscribed.add(group)

    async def _join_with_history(
        self,
        websocket: WebSocket,
        group: str,
        transport: asyncio.Transport,
        history: History,
        since: Position | None,
    ) -> Recovery:
        # Live messages that arrive while the history is read are held back, then sent
        # after the replay, skipping those the replay already had: none twice, none lost.
        if websocket in self._joining.get(group, ()) or group in self._joined.get(websocket, ()):
            read = await self.backend.read(group, history, None, entries=False)
            return Recovery(False, read.latest)
        joining = Joining(transport)
        self._joining.setdefault(group, {})[websocket] = joining
        try:
            await self._subscribe(group)
            read = await self.backend.read(group, history, since, entries=since is not None)
            websocket.check_open()
        except BaseException:
            self._stop_joining(websocket, group)
            raise
        complete = recovered(since, read)
        latest = read.latest
        replay = []
        if complete:
            replay = [
                server_frame(TEXT, envelope(group, latest.epoch, offset, data))
                for offset, data in read.entries
                if offset <= latest.offset
            ]
        self._joined[websocket] = (*self._joined.get(websocket, ()), group)
        delivered = self._delivered.get(group)
        # memory:// delivers as it publishes: this process has every message up to latest.
        if joining.replayed(replay, latest, delivered) or not self.backend.distributed:
            self._stop_joining(websocket, group)
            self._members.setdefault(group, {})[websocket] = transport
            if delivered is None:
                # Nothing is left to deliver up to latest: memory:// delivers as it
                # publishes, and otherwise the group has had no message yet.
                self._delivered[group] = latest
        # Otherwise this process has not yet received all the messages up to the latest:
        # the member becomes an ordinary one when the first message after it arrives.
        return Recovery(complete, latest)

    def _stop_joining(self, websocket: WebSocket, group: str) -> None:
        joining = self._joining.get(group)
        if joining is not None and joining.pop(websocket, None) is not None and not joining:
            del self._joining[group]

    async def read_history(
        self, group: str, since: Position | str | None = None
    ) -> list[tuple[Position, Message]]:
        """The messages ``group`` keeps after ``since`` (all of them without it)."""
        check_group_name(group)
        history = self.history_of(group)
        if history is None:
            raise ValueError(f"group {group!r} keeps no history")
        if isinstance(since, str):
            since = Position.parse(since)
        read = await self.backend.read(group, history, since)
        epoch = read.latest.epoch
        return [(Position(epoch, offset), json.loads(data)) for offset, data in read.entries]

    async def leave(self, websocket: WebSocket, group: str) -> None:
        """Remove ``websocket`` from ``group``; leaving a group it is not in does nothing."""
        check_group_name(group)
        joined = self._joined.get(websocket, ())
        if group not in joined:
            return
        self._joined[websocket] = tuple(name for name in joined if name != group)
        self._remove(websocket, group)
        unlisted = self._stop_watching(websocket, (group,))
        if unlisted:
            await self._unlist(websocket, unlisted)
        await self._prune()

    def leave_all(self, websocket: WebSocket) -> None:
        """Remove ``websocket`` from all its groups; called when its connection ends."""
        groups = self._joined.pop(websocket, ())
        self._over_limit_since.pop(websocket, None)
        for group in groups:
            self._remove(websocket, group)
        unlisted = self._stop_watching(websocket, groups)
        if unlisted:
            task = asyncio.ensure_future(self._unlist(websocket, unlisted))
            self._unlisting.add(task)
            task.add_done_callback(self._unlisting.discard)
        if self._unused_groups and (self._pruner is None or self._pruner.done()):
            self._pruner = asyncio.ensure_future(self._prune())

    def _remove(self, websocket: WebSocket, group: str) -> None:
        if self._joining:
            self._stop_joining(websocket, group)
            if group not in self._members and group not in self._joining:
                self._unused_groups.add(group)
        members = self._members.get(group)
        if members is not None and members.pop(websocket, None) is not None and not members:
            del self._members[group]
            self._unused_groups.add(group)

    async def _prune(self) -> None:
        """Unsubscribe from groups that lost their last local member."""
        async with self._subscription_lock:
            while self._unused_groups:
                group = self._unused_groups.pop()
                if (
                    group in self._members
                    or group in self._joining
                    or group not in self._subscribed
                ):
                    continue  # someone joined again meanwhile
                self._subscribed.discard(group)
                self._delivered.pop(group, None)
                try:
                    await self.backend.unsubscribe(group)
                except Exception:
                    logger.exception("Error unsubscribing from group %r", group)

    # Publishing --------------------------------------------------------------------------

    async def publish(
        self,
        group: str,
        message: Message,
        *,
        exclude: WebSocket | None = None,
        publisher: WebSocket | None = None,
    ) -> Position | None:
        """Send ``message`` to every member of ``group`` in every process.

        ``dict``/``list`` go as JSON text, ``str`` as text, bytes as binary. A group
        without members is not an error. Raises
        :class:`~aioendpoints.broadcast.BroadcastUnavailable` when the backend cannot take
        the message; then no member, here or elsewhere, gets it. A ``publisher``
        connection must pass its route's group check, as for joining. For a group with
        history, return the message's :class:`Position`.
        """
        check_group_name(group)
        if publisher is not None:
            check: GroupCheck | None = publisher.request.get(GROUP_CHECK_KEY)
            if check is not None:
                await check(publisher, group)
        history = self.history_of(group)
        if history is not None:
            return await self._publish_positioned(group, message, history, exclude)
        opcode, payload = encode_message(message, self._dumps)
        if self.backend.distributed:
            await self.backend.publish(group, opcode, payload)
        self.published += 1
        if self._deliver(group, opcode, payload, exclude):
            # Some members have unsent data: let the event loop flush it before the next
            # publish, or a publisher in a tight loop makes every member look slow.
            await asyncio.sleep(0)
        return None

    async def _publish_positioned(
        self, group: str, message: Message, history: History, exclude: WebSocket | None
    ) -> Position:
        data = history_payload(message, self._dumps)
        self.published += 1
        if not self.backend.distributed:
            position = await self.backend.append(group, data, history)
            if self._receive_positioned(group, position, data, 0, exclude):
                await asyncio.sleep(0)  # as in publish()
            return position
        # Every process, this one too, delivers in the order Redis numbered the messages.
        exclusion = 0
        if exclude is not None and (
            exclude in self._members.get(group, ()) or exclude in self._joining.get(group, ())
        ):
            # Only for a member: the message comes back here, and takes the token out.
            self._last_exclusion = exclusion = self._last_exclusion + 1
            self._exclusions[exclusion] = exclude
        try:
            position = await self.backend.append(group, data, history, exclusion=exclusion)
        except BaseException:
            self._exclusions.pop(exclusion, None)
            raise
        if exclusion in self._exclusions:
            # Not back yet: if the subscription is lost first, the message is read back
            # from the history by its position, and so is its exclusion.
            self._excluded_at[group, position] = exclusion
        return position

    def _receive_positioned(
        self,
        group: str,
        position: Position,
        data: bytes,
        exclusion: int,
        exclude: WebSocket | None = None,
    ) -> bool:
        if exclusion:
            exclude = self._exclusions.pop(exclusion, None)
            if self._excluded_at:
                self._excluded_at.pop((group, position), None)
        elif self._excluded_at:
            exclusion = self._excluded_at.pop((group, position), 0)
            if exclusion:  # published here, and read back after a lost subscription
                exclude = self._exclusions.pop(exclusion, None)
        delivered = self._delivered.get(group)
        if (
            delivered is not None
            and position.offset <= delivered.offset
            and position.epoch == delivered.epoch
        ):
            return False  # read back after a lost subscription, and now live again
        frame = server_frame(TEXT, envelope(group, position.epoch, position.offset, data))
        self._delivered[group] = position
        backlog = self._write(group, frame, exclude)
        joining = self._joining.get(group)
        if joining:
            for websocket, member in list(joining.items()):
                if member.receive(position, frame, websocket is not exclude):
                    self._stop_joining(websocket, group)
                    self._members.setdefault(group, {})[websocket] = member.transport
        return backlog

    async def _refill(self) -> None:
        """Deliver what the history groups published while the subscription was lost.

        Each group with local members is read from the last position delivered here; the
        messages after it go out in order before any live one, which is then dropped when
        the reading had it. A group whose epoch changed lost its history: its members see
        the new epoch in the next live message, as after a Redis restart.
        """
        wanted: list[tuple[str, History, Position]] = []
        for group in [*self._members, *(g for g in self._joining if g not in self._members)]:
            history = self.history_of(group)
            since = self._delivered.get(group)
            if since is None:
                # Only members still joining, each skipping what it read itself.
                latest = [m.latest for m in self._joining.get(group, {}).values() if m.latest]
                since = min(latest, key=lambda position: position.offset, default=None)
            if history is not None and since is not None:
                wanted.append((group, history, since))
        # All at once, over the command pool: one round trip's wait, not one per group.
        reads = await asyncio.gather(
            *(self.backend.read(group, history, since) for group, history, since in wanted),
            return_exceptions=True,
        )
        failed: list[str] = []
        for (group, _, since), read in zip(wanted, reads, strict=True):
            if isinstance(read, BaseException):
                # Redis is gone again: the next reconnection reads back from here.
                failed.append(f"{group!r}: {read}")
            elif read.latest.epoch != since.epoch:
                self._forget_exclusions(group)  # their messages are not coming back
            else:
                for offset, data in read.entries:
                    self._receive_positioned(group, Position(since.epoch, offset), data, 0)
        if failed:
            logger.warning(
                "Could not read back what %d group(s) with history published while the "
                "subscription was lost (%s)",
                len(failed),
                "; ".join(failed[:3]) + ("; ..." if len(failed) > 3 else ""),
            )

    def _forget_exclusions(self, group: str) -> None:
        for key in [key for key in self._excluded_at if key[0] == group]:
            self._exclusions.pop(self._excluded_at.pop(key), None)

    async def listen(self, channel: str, receive: Callable[[int, bytes], None]) -> None:
        """Have the messages other processes send on ``channel`` go to ``receive``.

        For aioendpoints' own use between processes (the admin API): such a channel is
        never a group and its messages never reach members.
        """
        await self.backend.subscribe(channel)
        self._listeners[channel] = receive

    def _receive(self, group: str, opcode: int, payload: bytes) -> None:
        if group.startswith(EVENTS_PREFIX):
            self._tell_watchers(group[len(EVENTS_PREFIX) :], payload)
            return
        if self._listeners:
            listener = self._listeners.get(group)
            if listener is not None:
                listener(opcode, payload)
                return
        self._deliver(group, opcode, payload, None)

    def _receive_from_backend(
        self, group: str, position: Position, data: bytes, exclusion: int
    ) -> None:
        self._receive_positioned(group, position, data, exclusion)

    def _deliver(self, group: str, opcode: int, payload: bytes, exclude: WebSocket | None) -> bool:
        """Write the message to each local member; tell whether some have a backlog."""
        if group not in self._members:
            return False
        return self._write(group, server_frame(opcode, payload), exclude)

    def _write(self, group: str, frame: bytes, exclude: WebSocket | None) -> bool:
        """Write the frame to each local member; tell whether some have a backlog."""
        members = self._members.get(group)
        if not members:
            return False
        limit = self.buffer_limit
        behind = self._over_limit_since
        backlog = False
        for websocket, transport in members.items():
            if websocket is exclude or websocket.closed or transport.is_closing():
                continue
            response = websocket.response
            if response is None or response.closed or websocket in self._policies:
                continue
            unsent = transport.get_write_buffer_size()
            if unsent > limit:
                if self._stays_behind(websocket, unsent):
                    self._too_slow(websocket, transport)
                    continue
            elif behind:
                behind.pop(websocket, None)  # caught up
            transport.write(frame)
            backlog = backlog or transport.get_write_buffer_size() > 0
        return backlog

    def _stays_behind(self, websocket: WebSocket, unsent: int) -> bool:
        """Whether a member over the limit has been so for too long, or is too far over."""
        now = asyncio.get_running_loop().time()
        since = self._over_limit_since.setdefault(websocket, now)
        return (
            now - since >= self.slow_member_timeout
            or unsent > self.buffer_limit * HARD_LIMIT_FACTOR
        )

    def _too_slow(self, websocket: WebSocket, transport: asyncio.Transport) -> None:
        behind_for = asyncio.get_running_loop().time() - self._over_limit_since.pop(websocket)
        self.slow_members += 1
        logger.warning(
            "WebSocket %r has %d unsent bytes, over the broadcast buffer limit of %d for "
            "%.1f s: it gets no more messages and gets %s",
            websocket,
            transport.get_write_buffer_size(),
            self.buffer_limit,
            behind_for,
            getattr(self.on_slow_member, "__qualname__", self.on_slow_member),
        )
        task = asyncio.ensure_future(self._apply_policy(websocket))
        self._policies[websocket] = task
        task.add_done_callback(lambda _: self._policies.pop(websocket, None))

    async def _apply_policy(self, websocket: WebSocket) -> None:
        try:
            await self.on_slow_member(websocket)
        except Exception:
            logger.exception("Error in the slow-member policy for %r", websocket)
        # A policy that keeps the member open lets it receive again once it has caught up.


#: The :class:`Broadcast` that :func:`aioendpoints.setup` installs on an application.
BROADCAST_KEY: Final = web.AppKey("aioendpoints.broadcast", Broadcast)


def install(
    app: web.Application, broadcast: str | Broadcast, history: HistorySettings | None = None
) -> Broadcast:
    """Put a :class:`Broadcast` on ``app`` and start and stop it with the app."""
    if isinstance(broadcast, Broadcast):
        hub = broadcast
        if history is not None:
            if hub.history is not None:
                raise ValueError("give history to setup() or to Broadcast(), not both")
            hub.history = history
    else:
        hub = Broadcast(broadcast, history=history)
    app[BROADCAST_KEY] = hub
    app[GROUP_HUB_KEY] = hub  # how the core finds it
    app.cleanup_ctx.append(hub.cleanup_context)
    return hub


def broadcast_of(owner: web.Application | WebSocket) -> Broadcast:
    """The :class:`Broadcast` of an application, or of the one serving a connection.

    For a connection, the application's parents are searched too (sub-applications).
    :func:`aioendpoints.setup` must have run.
    """
    if isinstance(owner, web.Application):
        hub = owner.get(BROADCAST_KEY)
    else:
        hub = app_value(owner.request, BROADCAST_KEY)
    if hub is None:
        raise RuntimeError(
            f"{owner!r} has no groups: call aioendpoints.setup(app) before using them"
        )
    return hub


async def publish(
    app: web.Application, group: str, message: Message, *, exclude: WebSocket | None = None
) -> Position | None:
    """Send ``message`` to every member of ``group``, from anywhere that has the app.

    ``exclude`` is a connection that does not get it, as in :meth:`Broadcast.publish`
    and :meth:`WebSocket.publish <aioendpoints.WebSocket.publish>`. For a group with
    history, return the message's :class:`Position`.
    """
    return await broadcast_of(app).publish(group, message, exclude=exclude)


async def history(
    app: web.Application, group: str, since: Position | str | None = None
) -> list[tuple[Position, Message]]:
    """The messages ``group`` keeps after ``since`` (all without it), oldest first.

    Raises :class:`ValueError` for a group without history.
    """
    return await broadcast_of(app).read_history(group, since)


async def presence(app: web.Application, group: str) -> dict[str, Any]:
    """The members of ``group`` that joined with ``presence=``, in every process: their
    connection ids and presence data."""
    return await broadcast_of(app).presence_of(group)


def group_members(app: web.Application, group: str) -> frozenset[WebSocket]:
    """The members of ``group`` connected to this process (once their join() returned)."""
    return broadcast_of(app).members(group)
