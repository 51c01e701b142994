"""The interface a broadcast backend implements, and the URLs that name one.

A backend carries messages between processes; it never talks to WebSockets. The process that
publishes delivers to its own members itself, so a backend only has to bring every
*other* process's messages to :meth:`BroadcastBackend.start`'s ``receive`` callback.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

__all__ = ["BroadcastBackend", "BroadcastUnavailable", "Receiver"]

#: Called by a backend for each message from another process: group, opcode, payload.
Receiver = Callable[[str, int, bytes], None]


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
