"""A live chat: a single web page and a WebSocket endpoint per room.

Run it from the repository's root, then open http://127.0.0.1:8080/ in two tabs::

    python -m aiohttp.web -H 127.0.0.1 -P 8080 examples.chat:init_app

It also serves the Bocadillo guide's echo at ``/echo``.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

import aioendpoints
from aioendpoints import WebSocketRoutes
from examples.echo import echo

from .messages import ROOM_PATTERN
from .room import ChatRoom
from .rooms import ROOMS_KEY, Rooms

__all__ = ["init_app", "routes"]

STATIC = Path(__file__).parent / "static"

routes = WebSocketRoutes()
routes.add_websocket_route("/echo", echo)
routes.add_websocket_route(f"/ws/rooms/{{room:{ROOM_PATTERN}}}", ChatRoom)


async def index(request: web.Request) -> web.FileResponse:
    """The chat page."""
    return web.FileResponse(STATIC / "index.html")


def init_app(argv: list[str] | None = None) -> web.Application:
    """Build the chat application (``argv`` is what ``python -m aiohttp.web`` passes on)."""
    app = web.Application()
    aioendpoints.setup(app)
    app[ROOMS_KEY] = Rooms()
    app.router.add_get("/", index)
    app.router.add_static("/static/", STATIC)
    app.add_routes(routes)
    return app
