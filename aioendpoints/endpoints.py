"""Class-based WebSocket endpoints, with ``on_connect``/``on_receive``/``on_disconnect`` hooks."""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ClassVar

from .exceptions import UnsupportedData, WebSocketDisconnect
from .group_hub import check_group_names
from .options import VALUE_TYPES, ValueType
from .serialization import MessageRouter
from .websocket import WebSocket

__all__ = ["WebSocketEndpoint"]

#: Each hook's parameters after ``self``, as the message of a bad signature shows them.
_HOOKS = {
    "on_connect": "websocket: WebSocket",
    "on_receive": "websocket: WebSocket, data: Any",
    "on_disconnect": "websocket: WebSocket, close_code: int",
    "decode": "websocket: WebSocket, message: str | bytes",
}
#: The attribute that marks a method as a typed-message handler. Its value compiles the
#: class's marked methods into a :class:`~aioendpoints.serialization.MessageRouter`.
MESSAGE_HANDLER_MARK = "__aioendpoints_message_handler__"
_RECEIVERS: dict[str | None, Callable[[WebSocket], Awaitable[Any]]] = {
    "text": WebSocket.receive_text,
    "bytes": WebSocket.receive_bytes,
    "json": WebSocket.receive_json,
    None: WebSocket.receive_message,
}


class WebSocketEndpoint:
    """A WebSocket endpoint: subclass it and override the hooks you need.

    One instance serves one connection. :meth:`on_connect` accepts it by default; each
    message is then decoded as :attr:`encoding` says and handed to :meth:`on_receive`, or
    decoded into its message class and handed to its :func:`~aioendpoints.on_message`
    handler;
    :meth:`on_disconnect` runs exactly once when the connection ends, however it ends.
    """

    # One instance per connection: no instance dict, unless a subclass leaves out
    # __slots__ (Python then gives its instances one; 40 bytes more per connection).
    __slots__ = ("websocket",)

    #: What :meth:`on_receive` gets: ``"text"``, ``"bytes"``, ``"json"``, or ``None`` for
    #: the route's ``receive_type`` when the route sets one (``value_type`` or
    #: ``receive_type``), else the message as it came (``str`` or ``bytes``). It is also
    #: the connection's default value type for :meth:`WebSocket.send`.
    encoding: ValueType | None = None

    #: Groups to join right after :meth:`on_connect` accepts: a list of names, or a method
    #: ``groups(self, websocket)`` that returns one (it may be async), for names built
    #: from route parameters. See :meth:`WebSocket.join`.
    groups: ClassVar[Sequence[str] | Callable[..., Any]] = ()

    #: The typed-message handlers (see :func:`~aioendpoints.on_message`), compiled when the
    #: class is defined; ``None`` when messages go to :meth:`on_receive`.
    message_router: ClassVar[MessageRouter | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.encoding is not None and cls.encoding not in VALUE_TYPES:
            raise ValueError(
                f"{cls.__qualname__}.encoding must be one of "
                f"{', '.join(map(repr, VALUE_TYPES))} or None, got {cls.encoding!r}"
            )
        if not callable(cls.groups):
            check_group_names(cls.groups, cls.__qualname__)
        for name, parameters in _HOOKS.items():
            _check_hook(cls, name, parameters)
        _check_names(cls)
        marked = {
            name: method
            for name in dir(cls)
            if hasattr(method := getattr(cls, name, None), MESSAGE_HANDLER_MARK)
        }
        if marked:
            compile_router = getattr(next(iter(marked.values())), MESSAGE_HANDLER_MARK)
            cls.message_router = compile_router(cls, marked)

    def __init__(self, websocket: WebSocket) -> None:
        #: The connection this instance serves.
        self.websocket = websocket

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
            await self._join_declared_groups(websocket)
        # Few locals: this frame is kept for as long as the connection is open.
        if self.message_router is not None:
            handle = self.message_router.handle
            try:
                while True:
                    await handle(self, websocket, await websocket.receive())
            except WebSocketDisconnect:
                return
        try:
            if type(self).decode is WebSocketEndpoint.decode:
                # The common case: the connection's own receive method decodes, with no
                # decode() coroutine per message.
                receive = _RECEIVERS[self.encoding]
                while True:
                    await self.on_receive(websocket, await receive(websocket))
            else:
                while True:
                    await self.on_receive(
                        websocket, await self.decode(websocket, await websocket.receive_message())
                    )
        except WebSocketDisconnect:
            return

    async def _join_declared_groups(self, websocket: WebSocket) -> None:
        """Join the groups this endpoint declares in its ``groups`` attribute or method."""
        declared: Any = self.groups
        if callable(declared):
            declared = declared(websocket)
            if inspect.isawaitable(declared):
                declared = await declared
        for group in check_group_names(declared, type(self).__qualname__):
            await websocket.join(group)

    async def on_connect(self, websocket: WebSocket) -> None:
        """Called when a client connects; accepts the connection unless overridden."""
        await websocket.accept()

    async def decode(self, websocket: WebSocket, message: str | bytes) -> Any:
        """Turn a received message into what :meth:`on_receive` gets, as :attr:`encoding` says.

        ``message`` is the message as it came: ``str`` for a text frame, ``bytes`` for a
        binary one. Override it to parse messages your way (as in Starlette); raise
        :class:`~aioendpoints.InvalidData` (1007) or
        :class:`~aioendpoints.UnsupportedData` (1003) for a message you refuse.
        """
        encoding = self.encoding
        if encoding is None:
            return message
        if encoding == "bytes":
            if isinstance(message, bytes):
                return message
            raise UnsupportedData(reason="expected a binary message, got a text one")
        if not isinstance(message, str):
            raise UnsupportedData(reason="expected a text message, got a binary one")
        if encoding == "json":
            return websocket.decode_json(message)
        return message

    async def on_receive(self, websocket: WebSocket, data: Any) -> None:
        """Called with each message, decoded as :attr:`encoding` says."""

    async def on_disconnect(self, websocket: WebSocket, close_code: int) -> None:
        """Called once when the connection has ended, with its close code."""


#: Route options that users set on an endpoint class, where ``encoding`` is the word.
_ROUTE_OPTIONS = ("value_type", "receive_type", "send_type")


def _check_names(cls: type[WebSocketEndpoint]) -> None:
    """Raise for a route option set on the class or a misspelt hook or ``encoding``."""
    for name, value in vars(cls).items():
        if name in _ROUTE_OPTIONS:
            raise TypeError(
                f"{cls.__qualname__}.{name}: {name} is a route option, not an endpoint "
                f"attribute; write encoding = {value!r} in the class, or pass "
                f"{name}={value!r} to websocket_route()"
            )
        if hasattr(WebSocketEndpoint, name) or hasattr(value, MESSAGE_HANDLER_MARK):
            continue
        known = (*_HOOKS, "encoding") if name.startswith("on_") else ("encoding",)
        # A typo is a letter or two off; on_connected or on_reconnect are the class's own.
        close = [
            meant
            for meant in difflib.get_close_matches(name, known, n=1, cutoff=0.8)
            if abs(len(meant) - len(name)) <= 1 and not name.startswith(meant)
        ]
        if close:
            raise TypeError(
                f"{cls.__qualname__}.{name} is not a WebSocketEndpoint attribute, so it "
                f"would never be used: did you mean {close[0]}?"
            )


def _check_hook(cls: type[WebSocketEndpoint], name: str, parameters: str) -> None:
    """Raise unless ``cls``'s hook ``name`` is async and takes ``parameters`` after self."""
    hook = getattr(cls, name)
    expected = f"async def {name}(self, {parameters})"
    if not inspect.iscoroutinefunction(hook):
        raise TypeError(f"{cls.__qualname__}.{name} must be an async method: write {expected}")
    arguments = (None,) * (parameters.count(":") + 1)
    try:
        signature = inspect.signature(hook)
    except ValueError:  # no signature to check (a C function): let it be
        return
    try:
        signature.bind(*arguments)
    except TypeError:
        bare = signature.replace(
            parameters=[p.replace(annotation=p.empty) for p in signature.parameters.values()],
            return_annotation=signature.empty,
        )
        raise TypeError(
            f"{cls.__qualname__}.{name}{bare} does not take the arguments it is called with: "
            f"write {expected}"
        ) from None
