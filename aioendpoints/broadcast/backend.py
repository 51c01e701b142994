"""The interface a broadcast backend implements, and the URLs that name one.

A backend carries messages between processes; it never talks to WebSockets. The process that
publishes delivers to its own members itself, so a backend only has to bring every
*other* process's messages to :meth:`BroadcastBackend.start`'s ``receive`` callback.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable

from .history import History, HistoryRead, Position
from .presence import MemoryPresence, PresenceStore

__all__ = ["BroadcastBackend", "BroadcastUnavailable", "HistoryReceiver", "Receiver"]

#: Called by a backend for each message from another process: group, opcode, payload.
Receiver = Callable[[str, int, bytes], None]
#: Called by a distributed backend for each message of a group with history, from every
#: process including this one, in offset order: group, position, JSON data, and the
#: exclusion token the publisher passed (0 for none or another process's).
HistoryReceiver = Callable[[str, Position, bytes, int], None]


class BroadcastUnavailable(ConnectionError):
    """The backend cannot take the message or the subscription (Redis is down, for example).

    Raised to the publisher or the joiner: a message that could not be published is never
    silently dropped.
    """


class BroadcastBackend(ABC):
    """Carries published messages to the other processes that share the backend."""

    #: Whether messages reach other processes (``False`` for ``memory://``).
    distributed: bool = False
    #: Called with the seconds each message from another process took to get here, by a
    #: backend that knows (Redis); set by the metrics.
    on_lag: Callable[[float], None] | None = None

    @abstractmethod
    async def start(self, receive: Receiver) -> None:
        """Connect; from now on, call ``receive`` for each message from another process."""

    @abstractmethod
    async def stop(self) -> None:
        """Disconnect and end every task the backend started."""

    @abstractmethod
    async def subscribe(self, group: str) -> None:
        """Receive ``group``'s messages; return once the subscription is in effect."""

    @abstractmethod
    async def unsubscribe(self, group: str) -> None:
        """Stop receiving ``group``'s messages."""

    @abstractmethod
    async def publish(self, group: str, opcode: int, payload: bytes) -> None:
        """Send a message to the other processes; raise :class:`BroadcastUnavailable` if not."""

    def presence_store(self) -> PresenceStore:
        """Where presence is kept, once started: in this process unless distributed."""
        return MemoryPresence()

    # History: optional; a backend without it refuses groups with history.

    #: Set by :class:`~aioendpoints.broadcast.Broadcast` before :meth:`start`: where a
    #: distributed backend delivers the messages of groups with history.
    history_receiver: HistoryReceiver | None = None
    #: Set by :class:`~aioendpoints.broadcast.Broadcast` before :meth:`start`: awaited by a
    #: distributed backend once a lost subscription is back, before it delivers anything
    #: read after it, so that what groups with history published meanwhile is read back
    #: from their histories and delivered first.
    on_resubscribed: Callable[[], Awaitable[None]] | None = None

    async def append(
        self, group: str, data: bytes, history: History, *, exclusion: int = 0
    ) -> Position:
        """Number ``data``, keep it in ``group``'s history and send it to every process.

        A distributed backend delivers it through :attr:`history_receiver`, in offset order,
        to this process too (with ``exclusion``); ``memory://`` leaves delivery to the caller.
        """
        raise NotImplementedError(f"{type(self).__name__} keeps no history")

    async def read(
        self, group: str, history: History, since: Position | None, *, entries: bool = True
    ) -> HistoryRead:
        """The group's latest position and, with ``entries``, its kept messages after
        ``since`` (all of them when ``since`` is ``None`` or from another epoch)."""
        raise NotImplementedError(f"{type(self).__name__} keeps no history")
