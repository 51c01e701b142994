"""A live chat: a single web page and a WebSocket endpoint per room.

Run it from the repository's root, then open http://127.0.0.1:8080/ in two tabs::

    python -m aiohttp.web -H 127.0.0.1 -P 8080 examples.chat:init_app

Rooms are aioendpoints groups, kept in the process by default. Set ``CHAT_REDIS_URL``
and every process started with the same Redis shares the rooms::

    CHAT_REDIS_URL=redis://127.0.0.1:6379/0 python -m aiohttp.web -P 8080 examples.chat:init_app
    CHAT_REDIS_URL=redis://127.0.0.1:6379/0 python -m aiohttp.web -P 8081 examples.chat:init_app

It also serves the Bocadillo guide's echo at ``/echo``, the protocol, generated from the
routes and message classes, at ``/asyncapi.html`` (readable) and ``/asyncapi.json``
(AsyncAPI 3.0.0), and its Prometheus metrics at ``/metrics``.

Logging in
----------
The page first posts the member's name to ``/login``, which checks it and answers with a
signed ``chat_login`` cookie (itsdangerous; see :mod:`examples.chat.login`). The rooms'
route authenticates with that cookie before the upgrade, so the server never takes a
name from what the page sends over the socket, and a handshake without a valid cookie
gets HTTP 401. The page logs in again before each (re)connection, so a restarted server
with a new key takes it back.

Who is in a room
----------------
:func:`aioendpoints.group_members` knows only this process's members, and the members in
other processes are reached only by publishing, so each page builds its own list of
members from four messages (members are told apart by an id, since names may repeat;
the classes are in :mod:`examples.chat.messages`):

* ``welcome`` (to the new member): its own id and its server's id. The page clears its list.
* ``present`` (to the new member): members to add to the list. The server sends one
  right after joining with the members in its process (``group_members``), the new
  member included.
* ``joined`` (to the room, the new member included): add this member. A page answers a
  ``joined`` from *another* server with ``{"type": "present", "to": id}``, which its
  server publishes to the new member's own group as a ``present`` naming the answerer.
* ``left`` (to the room): remove this member.

Nobody is missed: whichever of two members joins its groups second, the other is
already subscribed, so it either sees the newcomer's ``joined`` or is in its list. A
member that leaves has left its groups before ``left`` is published, and answers
before it leaves, so it does not come back after its ``left``. Limits of the sketch: a
server process that dies without closing its connections (``kill -9``) sends no
``left``, and messages published while a process has lost Redis do not reach it, so
pages elsewhere may show members who are gone until those pages reconnect.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from aiohttp import web

import aioendpoints
from aioendpoints import WebSocketRoutes
from examples.echo import echo

from .login import SIGNER_KEY, authenticate, log_in, signer
from .messages import ROOM_PATTERN, ChatMessage, Joined, Left, Members, Welcome, new_id
from .room import SERVER_ID_KEY, ChatRoom, room_group

__all__ = ["REDIS_URL_ENV", "init_app", "routes"]

#: The environment variable naming a Redis to share rooms through.
REDIS_URL_ENV = "CHAT_REDIS_URL"
STATIC = Path(__file__).parent / "static"

routes = WebSocketRoutes()
routes.add_websocket_route("/echo", echo)
# A member may vanish at any moment, even while joining (a closed tab, a lost network):
# that is the chat's normal life, not worth a warning in the server's log. Only members
# with a login cookie get in (HTTP 401 before the upgrade otherwise).
routes.add_websocket_route(
    f"/ws/rooms/{{room:{ROOM_PATTERN}}}",
    ChatRoom,
    caught_close_codes="all",
    authenticate=authenticate,
    send_messages=(Welcome, Members, Joined, Left, ChatMessage),
)


#: What each room keeps, so that a page that reconnects gets what it missed.
ROOM_HISTORY = aioendpoints.History(size=1000, ttl=600)


def room_history(group: str) -> aioendpoints.History | None:
    """Rooms keep their last messages; a member's own group keeps none."""
    return ROOM_HISTORY if group.startswith(room_group("")) else None


async def index(request: web.Request) -> web.FileResponse:
    """The chat page."""
    return web.FileResponse(STATIC / "index.html")


def init_app(argv: list[str] | None = None) -> web.Application:
    """Build the chat application (``argv`` is what ``python -m aiohttp.web`` passes on)."""
    if argv is not None:
        # Started by python -m aiohttp.web, which has set every logger to DEBUG: the demo's
        # log shows requests, warnings and errors instead.
        logging.basicConfig(level=logging.INFO, force=True)
    app = web.Application()
    aioendpoints.setup(
        app,
        broadcast=os.environ.get(REDIS_URL_ENV) or "memory://",
        asyncapi="/asyncapi.json",
        asyncapi_title="aioendpoints chat",
        metrics_path="/metrics",
        history=room_history,
    )
    app[SERVER_ID_KEY] = new_id()
    app[SIGNER_KEY] = signer()
    app.router.add_get("/", index)
    app.router.add_post("/login", log_in)
    app.router.add_static("/static/", STATIC)
    app.add_routes(routes)
    return app
