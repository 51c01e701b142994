"""The hook through which app-wide features watch connections: metrics, admin, tracing.

The core looks the application's :class:`ConnectionObserver` up once per connection
(``request.config_dict[OBSERVER_KEY]``) and tells it when a handshake begins, when it is
refused, when the connection opens, when a handler fails and when it has ended. An observer
that wants the connection's messages counted asks it when it opens
(:meth:`WebSocket.count_messages`): the connection then counts in a :class:`MessageCounts` of
its own, on its per-message paths, with no wrapper and no lookup. An observer that wants to
see each message replaces the connection's two per-message callables when it opens; without
either, the per-message paths stay exactly as they are.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Final

from aiohttp import WSMessage, WSMsgType, web

__all__ = [
    "OBSERVER_KEY",
    "ConnectionObserver",
    "MessageCounts",
    "ReceiveMessage",
    "SendFrame",
    "route_of",
]

#: An :class:`~aioendpoints.WebSocket`; named loosely, since the connection module imports this
#: one and not the other way round.
Connection = Any

#: Receives the next frame of a connection: the response's ``receive()``, or a limit's.
ReceiveMessage = Callable[[], Awaitable[WSMessage]]
#: Sends one frame's payload of a given kind: the response's ``send_frame()``, or a limit's.
SendFrame = Callable[[bytes | bytearray | memoryview, WSMsgType], Awaitable[None]]


class MessageCounts:
    """Messages and payload bytes of one connection, in each direction.

    Payload bytes are counted before compression, text as UTF-8. Only the messages that the
    connection's own ``receive*()`` and ``send*()`` calls (and ``async for``) return or take
    are counted, not control frames nor group deliveries. The connection counts them itself,
    inline on its per-message paths.
    """

    __slots__ = ("bytes_received", "bytes_sent", "messages_received", "messages_sent")

    def __init__(self) -> None:
        self.messages_received = 0
        self.bytes_received = 0
        self.messages_sent = 0
        self.bytes_sent = 0


class ConnectionObserver:
    """Hears about every connection of an application; each method does nothing here.

    Install one as ``app[OBSERVER_KEY]``; :func:`aioendpoints.setup` installs aioendpoints'
    own. Methods are called on the connection's task and must not block or raise.
    """

    def handshake(self, request: web.Request) -> None:
        """A WebSocket handshake for ``request`` begins, before any check."""

    def refused(self, request: web.Request, status: int) -> None:
        """The handshake of ``request`` was refused with HTTP ``status``."""

    def opened(
        self, websocket: Connection, receive: ReceiveMessage, send: SendFrame
    ) -> tuple[ReceiveMessage, SendFrame]:
        """``websocket`` was accepted; return the callables its messages go through.

        ``receive`` and ``send`` are what the connection would use; return them unchanged
        to leave the per-message paths alone, or wrappers to see each message.
        """
        return receive, send

    def raised(self, websocket: Connection, error: BaseException) -> None:
        """The view of ``websocket``, opened before, raised ``error``; :meth:`closed` follows.

        ``error`` is whatever ended the view: a fault, a mapped exception, an uncaught
        :class:`~aioendpoints.WebSocketDisconnect`, or the cancellation of its task.
        """

    def failed(self, websocket: Connection, error: Exception) -> None:
        """A handler of ``websocket`` failed with ``error``, logged with its traceback, and
        the connection goes on: a typed message's handler answered with an error reply."""

    def closed(self, websocket: Connection) -> None:
        """``websocket``, opened before, has ended with :attr:`WebSocket.close_code`."""


#: The application's :class:`ConnectionObserver`, if any.
OBSERVER_KEY: Final = web.AppKey("aioendpoints.observer", ConnectionObserver)


def route_of(request: web.Request) -> str:
    """The path pattern of the route that matched ``request`` (``/rooms/{room}``), or ``""``.

    The pattern, never the concrete path: one value per route, so labels stay bounded.
    """
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else ""
