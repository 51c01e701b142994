"""A route table for WebSocket views, in the manner of aiohttp's ``web.RouteTableDef``."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar, Unpack, overload

from aiohttp import hdrs, web

from .handlers import View, check_view, websocket_handler
from .options import WebSocketOptions
from .params import check_path_params, converters_for

__all__ = ["WebSocketRoutes"]

ViewT = TypeVar("ViewT", bound=View)


class WebSocketRoutes(Sequence[web.AbstractRouteDef]):
    """A table of WebSocket routes to add to an application with ``app.add_routes()``.

    ::

        routes = WebSocketRoutes()

        @routes.websocket_route("/echo")
        async def echo(ws: WebSocket) -> None: ...

        app.add_routes(routes)

    Like :class:`aiohttp.web.RouteTableDef`, it is a sequence of route definitions and its
    decorator returns the view unchanged.
    """

    def __init__(self) -> None:
        self._items: list[web.AbstractRouteDef] = []

    def __repr__(self) -> str:
        return f"<WebSocketRoutes count={len(self._items)}>"

    @overload
    def __getitem__(self, index: int) -> web.AbstractRouteDef: ...

    @overload
    def __getitem__(self, index: slice) -> list[web.AbstractRouteDef]: ...

    def __getitem__(self, index: int | slice) -> web.AbstractRouteDef | list[web.AbstractRouteDef]:
        return self._items[index]

    def __iter__(self) -> Iterator[web.AbstractRouteDef]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, item: object) -> bool:
        return item in self._items

    def websocket_route(
        self, path: str, *, name: str | None = None, **options: Unpack[WebSocketOptions]
    ) -> Callable[[ViewT], ViewT]:
        """Decorate a function view or a :class:`WebSocketEndpoint` subclass to serve ``path``.

        ``options`` are the route's settings (see :class:`WebSocketOptions`); ``name``
        names the route for ``app.router[name].url_for()``.
        """
        _check_path(path, "websocket_route")

        def register(view: ViewT) -> ViewT:
            self.add_websocket_route(path, view, name=name, **options)
            return view

        return register

    def add_websocket_route(
        self, path: str, view: View, *, name: str | None = None, **options: Unpack[WebSocketOptions]
    ) -> None:
        """Add a route without the decorator; the same as :meth:`websocket_route`."""
        _check_path(path, "add_websocket_route")
        check_view(view)
        if not isinstance(view, type):
            converters, takes_any = converters_for(view)
            check_path_params(path, view, converters, takes_any)
        handler = websocket_handler(view, **options)
        kwargs: dict[str, Any] = {} if name is None else {"name": name}
        self._items.append(web.RouteDef(hdrs.METH_GET, path, handler, kwargs))


#: Starlette's path convertors, and how to say each in aiohttp: a regex and an annotation.
_AIOHTTP_EQUIVALENTS = {
    "int": (r"\d+", "int"),
    "float": (r"[0-9]+(?:\.[0-9]+)?", "float"),
    "str": ("[^/]+", ""),
    "path": (".*", ""),
    "uuid": ("[0-9a-fA-F-]{36}", "uuid.UUID"),
}
_STARLETTE_CONVERTOR = re.compile(r"\{([A-Za-z_]\w*):(int|float|str|path|uuid)\}")


def _check_path(path: object, method: str) -> None:
    """Raise unless ``path`` is a route path, saying how to write it if it is not."""
    if callable(path):
        name = getattr(path, "__name__", "view")
        if method == "websocket_route":
            instead = f'@routes.websocket_route("/{name}") above {name}'
        else:
            instead = f'routes.add_websocket_route("/{name}", {name}): the path comes first'
        raise TypeError(f"{method}() needs a path: write {instead}")
    if not isinstance(path, str):
        raise TypeError(f"{method}() takes the route's path as a str first, got {path!r}")
    for match in _STARLETTE_CONVERTOR.finditer(path):
        name, convertor = match.groups()
        pattern, annotation = _AIOHTTP_EQUIVALENTS[convertor]
        raise ValueError(
            f"{path!r}: {{{name}:{convertor}}} is Starlette's convertor syntax; in aiohttp "
            f"the part after ':' is a regular expression, so it would match only the text "
            f"{convertor!r}. Write {{{name}:{pattern}}}"
            + (f" and annotate the view's parameter {name}: {annotation}" if annotation else "")
        )
