"""What happens to a member that does not read its messages fast enough."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from ..close_codes import CloseCode, is_sendable_close_code

if TYPE_CHECKING:
    from ..websocket import WebSocket

__all__ = ["SlowMemberPolicy", "close_slow_member"]

logger = logging.getLogger("aioendpoints.broadcast")

#: Called with a member that stayed over its buffer limit too long. Until the policy has
#: returned and the member has caught up, it misses the group's messages; the default
#: policy closes it.
SlowMemberPolicy = Callable[["WebSocket"], Awaitable[None]]


def close_slow_member(
    code: int = CloseCode.TRY_AGAIN_LATER,
    reason: str = "Too slow: messages piled up unread",
    *,
    timeout: float = 5.0,
) -> SlowMemberPolicy:
    """Return a policy that closes a slow member with ``code`` (1013 by default).

    The close frame queues behind the data the member has not read yet; when it has not
    closed after ``timeout`` seconds the connection is dropped, so memory stays bounded.
    """
    if not is_sendable_close_code(code):
        raise ValueError(f"close_slow_member() needs a close code that can be sent, got {code!r}")
    if timeout <= 0:
        raise ValueError(f"close_slow_member() timeout must be positive, got {timeout!r}")

    async def close(websocket: WebSocket) -> None:
        try:
            async with asyncio.timeout(timeout):
                await websocket.close(code, reason)
        except (TimeoutError, ConnectionError):
            logger.warning(
                "Slow member %r did not close within %.1f s: dropping the connection",
                websocket,
                timeout,
            )
            transport = websocket.request.transport
            if transport is not None:
                transport.abort()

    close.__qualname__ = f"close_slow_member({int(code)})"
    return close
