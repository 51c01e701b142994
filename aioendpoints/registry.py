"""The registry of an application's open connections, and closing them all at shutdown."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Final

from aiohttp import web

from .close_codes import CloseCode

if TYPE_CHECKING:
    from .websocket import WebSocket

__all__ = ["CONNECTIONS_KEY", "DEFAULT_SHUTDOWN_TIMEOUT", "ConnectionRegistry"]

logger = logging.getLogger("aioendpoints")

#: Default seconds that shutdown waits for views to end after their close frames.
DEFAULT_SHUTDOWN_TIMEOUT = 5.0


class ConnectionRegistry:
    """The application's open WebSocket connections, and the tasks serving them."""

    __slots__ = ("_connections", "shutdown_timeout")

    def __init__(self, *, shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT) -> None:
        self._connections: dict[WebSocket, asyncio.Task[object] | None] = {}
        #: Seconds :meth:`close_all` waits for views to end before it cancels them.
        self.shutdown_timeout = shutdown_timeout

    def __len__(self) -> int:
        return len(self._connections)

    def __iter__(self) -> Iterator[WebSocket]:
        return iter(list(self._connections))

    def __contains__(self, websocket: object) -> bool:
        return websocket in self._connections

    def add(self, websocket: WebSocket) -> None:
        """Register an accepted connection and the task that serves it."""
        self._connections[websocket] = asyncio.current_task()

    def discard(self, websocket: WebSocket) -> None:
        """Forget a connection that has ended."""
        self._connections.pop(websocket, None)

    async def close_all(
        self, code: int = CloseCode.GOING_AWAY, reason: str = "Server shutdown"
    ) -> None:
        """Close every open connection, wait for its view to end, cancel the stragglers."""
        if not self._connections:
            return
        tasks = {task for task in self._connections.values() if task is not None}
        closing = [asyncio.ensure_future(ws.close(code, reason)) for ws in self]
        _, pending = await asyncio.wait([*tasks, *closing], timeout=self.shutdown_timeout)
        for task in pending:
            task.cancel()
        if pending:
            logger.warning("Cancelled %d WebSocket task(s) still running at shutdown", len(pending))
            await asyncio.wait(pending, timeout=1.0)
        for task in closing:
            if task.done() and not task.cancelled() and task.exception() is not None:
                logger.error("Error closing a WebSocket at shutdown", exc_info=task.exception())


#: The :class:`ConnectionRegistry` that :func:`setup` installs on an application.
CONNECTIONS_KEY: Final = web.AppKey("aioendpoints.connections", ConnectionRegistry)
