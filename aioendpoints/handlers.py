"""The adapter: turns a function view or an endpoint class into an aiohttp handler.

Whatever the view does, the handler keeps the lifecycle guarantees: a view that returns
closes with 1000, one that raises closes with 1011 and logs its traceback once, and an
endpoint's ``on_disconnect`` runs exactly once with the real close code.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import sys
from collections.abc import Awaitable, Callable, Coroutine
from functools import partial
from typing import Any, Unpack

from aiohttp import hdrs, web

from .admission import Admission
from .close_codes import CloseCode
from .endings import Ending, ending_for
from .endpoints import WebSocketEndpoint
from .group_hub import GROUP_HUB_KEY
from .limits import abort_later
from .logs import connection_context
from .observers import OBSERVER_KEY
from .options import RouteOptions, ValueType, WebSocketOptions
from .params import ParamConverters, convert_params, converters_for
from .refusals import http_error
from .registry import CONNECTIONS_KEY
from .request_keys import app_value, app_values
from .websocket import WebSocket

__all__ = ["Handler", "View", "check_view", "websocket_handler"]

logger = logging.getLogger("aioendpoints")

#: An aiohttp request handler.
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
#: A function view (``async def view(ws, **params)``) or a :class:`WebSocketEndpoint` class.
View = Callable[..., Awaitable[None]] | type[WebSocketEndpoint]


def check_view(view: object) -> None:
    """Raise :class:`TypeError` unless ``view`` is an async function or an endpoint class."""
    if isinstance(view, type):
        if not issubclass(view, WebSocketEndpoint):
            raise TypeError(
                f"WebSocket endpoint class {view.__qualname__} must subclass WebSocketEndpoint"
            )
    elif not inspect.iscoroutinefunction(view):
        raise TypeError(f"WebSocket view {view!r} must be an async function (async def)")


def websocket_handler(view: View, /, **options: Unpack[WebSocketOptions]) -> Handler:
    """Return an aiohttp handler that serves ``view`` over WebSocket.

    For routes added by hand and in sub-applications::

        app.router.add_get("/ws", websocket_handler(echo, value_type="json"))

    Options are checked now, so a mistake raises here rather than at the first message.
    """
    check_view(view)
    if isinstance(view, type) and issubclass(view, WebSocketEndpoint):
        route_options = RouteOptions.from_options(
            options, default_value_type=view.encoding, message_router=view.message_router
        )
        # An endpoint without an encoding gets what the route says it receives, if it says.
        says = "receive_type" in options or "value_type" in options
        start = _endpoint_start(view, route_options, route_options.receive_type if says else None)
    else:
        assert not isinstance(view, type)
        converters, takes_any = converters_for(view)
        route_options = RouteOptions.from_options(options)
        start = _function_start(view, route_options, converters, takes_any)
    admitted = _named(partial(_serve, _Route(start, Admission(route_options), view)), view)
    # What the route serves, for descriptions of the app such as its AsyncAPI document.
    admitted.websocket_view = view  # type: ignore[attr-defined]
    admitted.websocket_options = route_options  # type: ignore[attr-defined]
    return admitted


#: Makes a request's connection: the WebSocket, the view's coroutine, and the endpoint
#: (``None`` for a function view), whose ``on_disconnect`` is looked up when it is called
#: rather than kept as a bound method for the whole connection. Plain functions, so that
#: while a connection is open only ``_serve`` and the view are on its stack.
_Start = Callable[[web.Request], tuple[WebSocket, Awaitable[None], WebSocketEndpoint | None]]


def _endpoint_start(
    endpoint_class: type[WebSocketEndpoint], options: RouteOptions, encoding: ValueType | None
) -> _Start:
    if endpoint_class.encoding is None and encoding is not None:
        # The route says what the endpoint receives: a subclass that says so, made once here
        # rather than an attribute set on each instance (endpoints have no instance dict).
        endpoint_class = type(
            endpoint_class.__name__,
            (endpoint_class,),
            {
                "__slots__": (),
                "encoding": encoding,
                "__module__": endpoint_class.__module__,
                "__qualname__": endpoint_class.__qualname__,
                "__doc__": endpoint_class.__doc__,
            },
        )

    def start(request: web.Request) -> tuple[WebSocket, Awaitable[None], WebSocketEndpoint]:
        websocket = WebSocket(request, options, None)
        endpoint = endpoint_class(websocket)
        return websocket, endpoint.dispatch(), endpoint

    return start


def _function_start(
    view: Callable[..., Awaitable[None]],
    options: RouteOptions,
    converters: ParamConverters,
    takes_any: bool,
) -> _Start:
    def start(request: web.Request) -> tuple[WebSocket, Awaitable[None], None]:
        params = convert_params(request.match_info, converters, takes_any)
        websocket = WebSocket(request, options, params)
        return websocket, view(websocket, **params), None

    return start


def _named(handler: partial[Coroutine[Any, Any, web.StreamResponse]], view: Any) -> Handler:
    handler.__name__ = getattr(view, "__name__", "websocket_handler")  # type: ignore[attr-defined]
    handler.__qualname__ = getattr(view, "__qualname__", "websocket_handler")  # type: ignore[attr-defined]
    handler.__doc__ = getattr(view, "__doc__", None)
    return handler


def _require_upgrade(request: web.Request) -> None:
    if request.headers.get(hdrs.UPGRADE, "").lower() != "websocket":
        raise web.HTTPUpgradeRequired(
            text="This URL serves WebSocket connections only: "
            "send a GET request with 'Upgrade: websocket'.",
            headers={hdrs.UPGRADE: "websocket", hdrs.CONNECTION: "Upgrade"},
        )


class _Route:
    """What a route's handler serves: how its connections start, its admission, its view."""

    __slots__ = ("admission", "start", "view")

    def __init__(self, start: _Start, admission: Admission, view: Any) -> None:
        self.start = start
        self.admission = admission
        self.view = view


async def _serve(route: _Route, request: web.Request) -> web.StreamResponse:
    """The aiohttp handler of a route (``partial``-bound to it): admit, run, end.

    One coroutine for all of it, so that an open connection keeps no more frames than the
    view's own; it keeps few locals and calls few functions with many arguments, since its
    frame (locals and value stack) is kept for as long as the connection is open.
    """
    _observe_handshake(request)
    try:
        await route.admission.admit(request)
        try:
            _require_upgrade(request)
            websocket, running, endpoint = route.start(request)
        except BaseException:
            route.admission.release(request)
            raise
        try:
            # Every record logged while serving the connection carries its id and route. Set
            # back to the outer value rather than reset with a token: one object less to keep.
            outer = connection_context.get()
            connection_context.set(websocket)
            error: BaseException | None = None
            try:
                try:
                    await running
                except (Exception, asyncio.CancelledError):
                    # Not "as": that name would be one more slot in this long-lived frame.
                    error = sys.exc_info()[1]
                await _carry_out(websocket, error, route.view)
            finally:
                if websocket.accepted:
                    await _release(websocket, endpoint, route.view, error)
                connection_context.set(outer)
            assert websocket.response is not None
            return websocket.response
        finally:
            route.admission.release(request)
    except web.HTTPException:
        # Once the handshake is accepted, the view runner answers everything with a close
        # frame: an HTTP error that gets here refused the handshake.
        _observe_refusal(request)
        raise


def _observe_handshake(request: web.Request) -> None:
    observer = app_value(request, OBSERVER_KEY)
    if observer is not None:
        observer.handshake(request)


def _observe_refusal(request: web.Request) -> None:
    """Tell the observer of the refusal being raised (called in its ``except`` block)."""
    observer = app_value(request, OBSERVER_KEY)
    refusal = sys.exc_info()[1]
    if observer is not None and isinstance(refusal, web.HTTPException):
        observer.refused(request, refusal.status)


def _ending(websocket: WebSocket, error: BaseException | None) -> Ending:
    """How the connection ends, now that its view has returned or raised ``error``."""
    options = websocket.options
    return ending_for(
        error,
        accepted=websocket.accepted,
        closed=(
            None if websocket.close_code is None else (websocket.close_code, websocket.close_reason)
        ),
        closed_here=websocket.closed_here,
        catches=options.catches,
        mapped=None if error is None else options.close_for(error),
    )


async def _carry_out(websocket: WebSocket, error: BaseException | None, view: Any) -> None:
    """Log how the connection ends, then close, drop or refuse it as the ending says."""
    ending = _ending(websocket, error)
    if ending.log_level:
        logger.log(
            ending.log_level,
            "WebSocket view %s %s",
            _name(view),
            ending.message,
            exc_info=error if ending.traceback else None,
        )
    if not websocket.accepted:
        websocket.refused(ending.code, ending.reason)
        if ending.reraise and error is not None:
            raise error
        assert ending.refusal is not None
        raise http_error(ending.refusal, ending.reason or None) from None
    if ending.drop:
        websocket.drop()
    elif ending.send_close:
        await websocket.close(ending.code, ending.reason)
    if ending.reraise and error is not None:
        raise error


async def _release(
    websocket: WebSocket,
    endpoint: WebSocketEndpoint | None,
    view: Any,
    error: BaseException | None,
) -> None:
    """Forget an accepted connection that has ended, and tell whoever listens."""
    value_of = app_values(websocket.request)
    registry = value_of(CONNECTIONS_KEY)
    if registry is not None:
        registry.discard(websocket)
    logger.debug(
        "WebSocket closed with %d %r",
        websocket.close_code or CloseCode.ABNORMAL_CLOSURE,
        websocket.close_reason,
    )
    hub = value_of(GROUP_HUB_KEY)
    if hub is not None:
        hub.leave_all(websocket)
    observer = value_of(OBSERVER_KEY)
    if observer is not None:
        if error is not None:
            observer.raised(websocket, error)
        observer.closed(websocket)
    transport = websocket.request.transport
    if transport is not None:
        # A transport closed with unsent data waits for a reader that may never read.
        abort_later(transport, websocket.options.close_timeout)
    if endpoint is not None:
        await _run_disconnect_hook(websocket, endpoint.on_disconnect, view)


# Disconnect hooks that outlive their cancelled handler task, referenced until they end.
_unfinished_hooks: set[asyncio.Future[None]] = set()


async def _run_disconnect_hook(
    websocket: WebSocket,
    on_disconnect: Callable[[WebSocket, int], Awaitable[None]],
    view: Any,
) -> None:
    """Run ``on_disconnect`` to its end, even if the task serving the connection is cancelled.

    aiohttp cancels a handler's task when its client goes away (always in its test server,
    and with ``handler_cancellation=True``); that must not cut the hook short.
    """
    hook = asyncio.ensure_future(_logging_errors(websocket, on_disconnect, view))
    try:
        await asyncio.shield(hook)
    except asyncio.CancelledError:
        _unfinished_hooks.add(hook)
        hook.add_done_callback(_unfinished_hooks.discard)
        raise


async def _logging_errors(
    websocket: WebSocket,
    on_disconnect: Callable[[WebSocket, int], Awaitable[None]],
    view: Any,
) -> None:
    try:
        await on_disconnect(websocket, websocket.close_code or CloseCode.ABNORMAL_CLOSURE)
    except Exception:
        logger.exception("Error in %s.on_disconnect", _name(view))


def _name(view: Any) -> str:
    return str(getattr(view, "__qualname__", view))
