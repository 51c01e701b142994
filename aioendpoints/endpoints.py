"""Class-based WebSocket endpoints, with ``on_connect``/``on_receive``/``on_disconnect`` hooks."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Generator, Sequence
from typing import Any, ClassVar

from .broadcast.groups import check_groups, join_declared_groups
from .exceptions import WebSocketDisconnect
from .options import VALUE_TYPES, ValueType
from .websocket import WebSocket

__all__ = ["WebSocketEndpoint"]

_HOOKS = ("on_connect", "on_receive", "on_disconnect")
_RECEIVERS: dict[str | None, Callable[[WebSocket], Awaitable[Any]]] = {
    "text": WebSocket.receive_text,
    "bytes": WebSocket.receive_bytes,
    "json": WebSocket.receive_json,
    None: WebSocket.receive_message,
}


class WebSocketEndpoint:
    """A WebSocket endpoint: subclass it and override the hooks you need.

    One instance serves one connection. :meth:`on_connect` accepts it by default; each
    message is then decoded as :attr:`encoding` says and handed to :meth:`on_receive`;
    :meth:`on_disconnect` runs exactly once when the connection ends, however it ends.
    """

    #: What :meth:`on_receive` gets: ``"text"``, ``"bytes"``, ``"json"``, or ``None`` for
    #: the message as it came (``str`` or ``bytes``). It is also the connection's default
    #: value type for :meth:`WebSocket.send`.
    encoding: ClassVar[ValueType | None] = None

    #: Groups to join right after :meth:`on_connect` accepts: a list of names, or a method
    #: ``groups(self, websocket)`` that returns one (it may be async), for names built
    #: from route parameters. See :meth:`WebSocket.join`.
    groups: ClassVar[Sequence[str] | Callable[..., Any]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.encoding is not None and cls.encoding not in VALUE_TYPES:
            raise ValueError(
                f"{cls.__qualname__}.encoding must be one of "
                f"{', '.join(map(repr, VALUE_TYPES))} or None, got {cls.encoding!r}"
            )
        if not callable(cls.groups):
            check_groups(cls.groups, cls.__qualname__)
        for name in _HOOKS:
            hook = getattr(cls, name)
            if not inspect.iscoroutinefunction(hook):
                raise TypeError(f"{cls.__qualname__}.{name} must be an async method, got {hook!r}")

    def __init__(self, websocket: WebSocket) -> None:
        #: The connection this instance serves.
        self.websocket = websocket

    def __await__(self) -> Generator[Any, None, None]:
        return self.dispatch().__await__()

    async def dispatch(self) -> None:
        """Run the endpoint: connect, then hand each message to :meth:`on_receive`.

        Ends when the peer closes or the connection drops. :meth:`on_disconnect` is run by
        the view runner afterwards, once, with the close code.
        """
        websocket = self.websocket
        await self.on_connect(websocket)
        if not websocket.accepted or websocket.closed:
            return
        if self.groups:
            await join_declared_groups(self, websocket)
        receive = _RECEIVERS[self.encoding]
        on_receive = self.on_receive
        try:
            while True:
                await on_receive(websocket, await receive(websocket))
        except WebSocketDisconnect:
            return

    async def on_connect(self, websocket: WebSocket) -> None:
        """Called when a client connects; accepts the connection unless overridden."""
        await websocket.accept()

    async def on_receive(self, websocket: WebSocket, data: Any) -> None:
        """Called with each message, decoded as :attr:`encoding` says."""

    async def on_disconnect(self, websocket: WebSocket, close_code: int) -> None:
        """Called once when the connection has ended, with its close code."""
