"""The app the admin tests serve: connections tagged with a user, HTTP routes that act on them.

``/ws?user=alice`` echoes text and tags its connection with the user; ``POST
/send?user=alice`` (body: the text) and ``POST /disconnect?user=alice&code=4000&reason=bye``
call the admin API and answer ``{"reached": n}``; ``GET /connections`` lists this
process's connections. Served in-process and as ``tests.admin_app:init_app`` by
``python -m aiohttp.web``, with the backend URL in ``AIOENDPOINTS_TEST_BROADCAST``.
"""

from __future__ import annotations

import os

from aiohttp import web

import aioendpoints
from aioendpoints import WebSocket, WebSocketRoutes

BROADCAST_ENV = "AIOENDPOINTS_TEST_BROADCAST"

routes = WebSocketRoutes()
http_routes = web.RouteTableDef()


@routes.websocket_route("/ws", value_type="text", caught_close_codes="all")
async def tagged(ws: WebSocket) -> None:
    ws.user = ws.query_params.get("user") or None
    await ws.accept()
    async for text in ws:
        await ws.send(text)


@http_routes.post("/send")
async def send(request: web.Request) -> web.Response:
    reached = await aioendpoints.send_to_user(
        request.app, request.query["user"], await request.text()
    )
    return web.json_response({"reached": reached})


@http_routes.post("/disconnect")
async def disconnect(request: web.Request) -> web.Response:
    query = request.query
    reached = await aioendpoints.disconnect(
        request.app, user=query["user"], code=int(query["code"]), reason=query.get("reason", "")
    )
    return web.json_response({"reached": reached})


@http_routes.get("/connections")
async def connections(request: web.Request) -> web.Response:
    return web.json_response([info.as_dict() for info in aioendpoints.connections(request.app)])


def make_app(broadcast: str = "memory://", **setup_options: object) -> web.Application:
    """The admin test app over ``broadcast``."""
    app = web.Application()
    aioendpoints.setup(app, broadcast=broadcast, **setup_options)  # type: ignore[arg-type]
    app.add_routes(routes)
    app.add_routes(http_routes)
    return app


def init_app(argv: list[str] | None = None) -> web.Application:
    """For ``python -m aiohttp.web``: the backend URL comes from the environment."""
    return make_app(os.environ[BROADCAST_ENV])
