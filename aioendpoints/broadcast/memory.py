"""``memory://``: groups within one process, with no dependency."""

from __future__ import annotations

from .backend import BroadcastBackend, Receiver

__all__ = ["MemoryBackend"]


class MemoryBackend(BroadcastBackend):
    """The in-process backend: there are no other processes to reach.

    The publishing process delivers to its own members itself, so every method here
    has nothing to do. Use it for one process; use Redis once there are several.
    """

    distributed = False

    async def start(self, receive: Receiver) -> None:
        """Nothing to connect to."""

    async def stop(self) -> None:
        """Nothing to disconnect."""

    async def subscribe(self, group: str) -> None:
        """Every local member already gets every local message."""

    async def unsubscribe(self, group: str) -> None:
        """Nothing to undo."""

    async def publish(self, group: str, opcode: int, payload: bytes) -> None:
        """No other process to send to."""
