"""Keys of what features leave on a handshake request for the connection to find.

aiohttp 3.14 wants typed ``web.RequestKey`` keys for request storage and warns about
strings; older versions have no ``RequestKey``, and take strings.
"""

from __future__ import annotations

from typing import Any, Final, Protocol, TypeVar

from aiohttp import web

__all__ = [
    "GROUP_CHECK_KEY",
    "HIDDEN_SUBPROTOCOLS_KEY",
    "PRINCIPAL_KEY",
    "RECEIVE_FILTER_KEY",
    "USER_ID_KEY",
    "AppValues",
    "app_value",
    "app_values",
    "request_key",
    "request_value",
]

_T = TypeVar("_T")


def app_value(request: web.Request, key: web.AppKey[_T]) -> _T | None:
    """``request.config_dict.get(key)``: the value of ``key`` in the request's application or
    the nearest enclosing one, else ``None``.

    Without ``config_dict``, which keeps a mapping and a tuple in each request it is read
    from (0.1 KiB a connection), and raises and catches a ``KeyError`` per application for
    a missing key.
    """
    match_info = request.match_info
    apps = match_info.apps
    if len(apps) == 1:
        # No sub-application (the usual case): one dictionary lookup. Application.get
        # reads its state directly; "in" then [] would look the key up twice, and raise
        # and catch a KeyError when it is absent.
        return apps[0].get(key)
    current = match_info.current_app
    for app in reversed(apps[: apps.index(current) + 1]):
        if key in app:
            return app[key]
    return None


class AppValues(Protocol):
    """Reads app-wide parts the way :func:`app_value` does, for one request."""

    def __call__(self, key: web.AppKey[_T], /) -> _T | None:
        """The value of ``key`` in the request's application or the nearest enclosing one."""


def app_values(request: web.Request) -> AppValues:
    """:func:`app_value` for ``request``, as a function of the key, for a step that reads
    several keys: the request's applications are found once, and without sub-applications
    the function is ``Application.get`` itself."""
    apps = request.match_info.apps
    if len(apps) == 1:
        return apps[0].get

    def value_of(key: web.AppKey[_T], /) -> _T | None:
        return app_value(request, key)

    return value_of


def request_value(request: web.BaseRequest, key: Any, default: Any = None) -> Any:
    """``request.get(key, default)``, without raising and catching a ``KeyError`` (as
    ``Mapping.get`` does for an absent key) when the request stores nothing, as most
    handshakes' requests do."""
    return request.get(key, default) if len(request) else default


def request_key(name: str) -> Any:
    """A key for ``request[key]``: a ``web.RequestKey`` where aiohttp has it, else ``name``."""
    key_type = getattr(web, "RequestKey", None)
    return name if key_type is None else key_type(name, object)


#: Who the peer is (:attr:`WebSocket.principal <aioendpoints.WebSocket.principal>`), set
#: before the view runs by the route's ``authenticate`` check (see :mod:`aioendpoints.auth`).
PRINCIPAL_KEY: Final = request_key("aioendpoints.principal")
#: The principal's user id, the connection's :attr:`WebSocket.user
#: <aioendpoints.WebSocket.user>` from the start.
USER_ID_KEY: Final = request_key("aioendpoints.user_id")
#: A :data:`~aioendpoints.websocket.ReceiveFilter`: how a feature (a credential's refresh)
#: sees incoming messages before the view does. Routes without one pay nothing.
RECEIVE_FILTER_KEY: Final = request_key("aioendpoints.receive_filter")
#: A check ``(websocket, group)`` that joining and a connection's publish await first; it
#: raises to refuse. Set by a route's ``group_permission`` (see :mod:`aioendpoints.auth`).
GROUP_CHECK_KEY: Final = request_key("aioendpoints.group_check")
#: Prefixes of offered subprotocols that carry credentials (``"bearer."``): they are left
#: out of :attr:`WebSocket.subprotocols <aioendpoints.WebSocket.subprotocols>`, so that
#: ``accept()`` can never select, and echo, one.
HIDDEN_SUBPROTOCOLS_KEY: Final = request_key("aioendpoints.hidden_subprotocols")
