"""An app for the shutdown test: reports each on_disconnect on stdout."""

from __future__ import annotations

import sys
from typing import Any

from aiohttp import web

import aioendpoints
from aioendpoints import WebSocket, WebSocketEndpoint, WebSocketRoutes

routes = WebSocketRoutes()


@routes.websocket_route("/listen")
class Listener(WebSocketEndpoint):
    async def on_connect(self, ws: WebSocket) -> None:
        await ws.accept()
        print("connected", flush=True)

    async def on_receive(self, ws: WebSocket, data: Any) -> None:
        await ws.send(data)

    async def on_disconnect(self, ws: WebSocket, close_code: int) -> None:
        print(f"on_disconnect {close_code}", flush=True)
        sys.stdout.flush()


def init_app(argv: list[str] | None = None) -> web.Application:
    app = web.Application()
    aioendpoints.setup(app)
    app.add_routes(routes)
    return app
