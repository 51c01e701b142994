"""Handlers for typed messages on endpoints: declared with :func:`on_message`, checked when
the class is defined, and dispatched by the class of each decoded message."""

from __future__ import annotations

import inspect
import logging
import typing
from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import Any, TypeVar, overload

from ..endpoints import MESSAGE_HANDLER_MARK, WebSocketEndpoint
from ..exceptions import WebSocketClose, WebSocketDisconnect
from ..observers import OBSERVER_KEY
from ..request_keys import app_value
from .codecs import _kind_of, message_classes, message_kind, msgspec_decoder

__all__ = ["MessageRejected", "on_message"]

logger = logging.getLogger("aioendpoints")

HandlerT = TypeVar("HandlerT", bound=Callable[..., Awaitable[Any]])
_CLASSES = "__aioendpoints_message_classes__"


class MessageRejected(Exception):
    """Raise from a message handler to answer with an error message saying why.

    The connection stays open and no traceback is logged; a request gets the error with
    its id.
    """


@overload
def on_message(handler: HandlerT, /) -> HandlerT: ...


@overload
def on_message(*classes: type) -> Callable[[HandlerT], HandlerT]: ...


def on_message(*classes: Any) -> Any:
    """Mark an endpoint method as the handler of a message class.

    The class comes from the message parameter's annotation, or from the decorator's
    arguments::

        class Room(WebSocketEndpoint):
            @on_message
            async def say(self, ws: WebSocket, message: Say) -> None: ...

            @on_message(Join, Leave)
            async def membership(self, ws: WebSocket, message: Join | Leave) -> None: ...

    A handler's return value, if not ``None``, is sent back: as the reply to a request
    when the message carries a request id. Checked when the class is defined.
    """
    if len(classes) == 1 and inspect.isfunction(classes[0]):
        return _mark(classes[0], ())

    def decorate(handler: HandlerT) -> HandlerT:
        return _mark(handler, classes)

    return decorate


def _mark(handler: HandlerT, classes: tuple[type, ...]) -> HandlerT:
    setattr(handler, MESSAGE_HANDLER_MARK, compile_router)
    setattr(handler, _CLASSES, classes)
    return handler


class Router:
    """An endpoint's handlers by message class, and the replies they send."""

    def __init__(
        self,
        owner: str,
        handlers: dict[type, Callable[..., Awaitable[Any]]],
        sends: tuple[type, ...],
    ) -> None:
        self._owner = owner
        self._handlers = handlers
        #: The message classes the client sends.
        self.receives = tuple(handlers)
        #: The message classes the handlers say they return.
        self.sends = sends

    def __repr__(self) -> str:
        return f"<Router {self._owner}: {', '.join(cls.__qualname__ for cls in self.receives)}>"

    async def handle(self, endpoint: Any, websocket: Any, message: Any) -> None:
        """Run the handler of ``message``'s class; send its reply, or an error reply."""
        handler = self._handlers[type(message)]
        codec = websocket.message_codec
        request_id = getattr(message, codec.request_id, None)
        try:
            reply = await handler(endpoint, websocket, message)
        except MessageRejected as rejected:
            await websocket.send(codec.error(str(rejected), request_id))
            return
        except (WebSocketClose, WebSocketDisconnect):
            raise
        except Exception as error:
            if request_id is None:
                raise  # the view runner logs it and closes with 1011
            logger.exception(
                "Error in %s.%s handling request %r", self._owner, handler.__name__, request_id
            )
            observer = app_value(websocket.request, OBSERVER_KEY)
            if observer is not None:
                observer.failed(websocket, error)
            await websocket.send(codec.error("internal server error", request_id))
            return
        if reply is not None:
            await websocket.send(reply if request_id is None else codec.reply(reply, request_id))


def compile_router(cls: type[WebSocketEndpoint], marked: dict[str, Any]) -> Router:
    """Check an endpoint's message handlers and compile them into a :class:`Router`."""
    owner = cls.__qualname__
    for hook in ("on_receive", "decode"):
        if getattr(cls, hook) is not getattr(WebSocketEndpoint, hook):
            raise TypeError(
                f"{owner} has on_message handlers and {hook}: with handlers, every message "
                f"is decoded into its class and goes to its handler; drop {hook}"
            )
    if cls.encoding not in (None, "json"):
        raise TypeError(f"{owner} has on_message handlers, which take JSON: drop encoding")
    handlers: dict[type, Callable[..., Awaitable[Any]]] = {}
    names: dict[type, str] = {}
    sends: list[type] = []
    for name, handler in marked.items():
        where = f"{owner}.{name}"
        if not inspect.iscoroutinefunction(handler):
            raise TypeError(f"{where} must be an async method to handle messages")
        parameters = list(inspect.signature(handler).parameters.values())
        positional = [
            p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        if len(positional) != 3:
            raise TypeError(
                f"{where} must take (self, websocket, message), "
                f"got ({', '.join(p.name for p in positional)})"
            )
        classes = getattr(handler, _CLASSES)
        if not classes:
            message = positional[2].name
            annotation = _annotation(handler, message, where)
            if annotation is _MISSING:
                raise TypeError(
                    f"{where}: annotate the parameter {message!r} with its message class, "
                    "or name the classes: @on_message(Say)"
                )
            classes = message_classes(annotation, f"{where}'s {message!r} annotation")
        else:
            for cls_ in classes:
                if message_kind(cls_) is None:
                    raise TypeError(
                        f"@on_message on {where} takes msgspec.Struct or pydantic.BaseModel "
                        f"classes, got {cls_!r}"
                    )
        for message_class in classes:
            if message_class in handlers:
                raise TypeError(
                    f"{owner}: {names[message_class]} and {name} both handle "
                    f"{message_class.__qualname__}; a message class has one handler"
                )
            handlers[message_class] = handler
            names[message_class] = name
        try:
            returned = _annotation(handler, "return", where)
        except TypeError:
            returned = None  # only describes the route: a type checker's name is no error
        if returned is not _MISSING and returned is not None and returned is not type(None):
            members = typing.get_args(returned) or (returned,)
            sends.extend(cls_ for cls_ in members if message_kind(cls_) is not None)
    receives = tuple(handlers)
    kind = _kind_of((*receives, *sends), owner)
    if kind == "msgspec":
        msgspec_decoder(receives, owner)  # checks now that the classes can be told apart
    return Router(owner, handlers, tuple(dict.fromkeys(sends)))


_MISSING: Any = object()


def _annotation(handler: Callable[..., Any], name: str, where: str) -> Any:
    """The annotation of one parameter (or ``"return"``), resolved; the others may not be."""
    annotations = getattr(handler, "__annotations__", {})
    if name not in annotations:
        return _MISSING
    holder = SimpleNamespace(__annotations__={name: annotations[name]})
    try:
        return typing.get_type_hints(holder, globalns=getattr(handler, "__globals__", None))[name]
    except NameError as error:
        raise TypeError(
            f"{where}: cannot resolve the annotation of {name!r} ({error}); define the "
            "message classes at module level, or name them: @on_message(Say)"
        ) from None
