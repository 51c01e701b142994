"""The Bocadillo guide's echo example, on aiohttp.

Run it with::

    python -m aiohttp.web -H 127.0.0.1 -P 8080 examples.echo:init_app
"""

from typing import Any

from aiohttp import web

import aioendpoints
from aioendpoints import WebSocket, WebSocketEndpoint, WebSocketRoutes

routes = WebSocketRoutes()


@routes.websocket_route("/echo")
async def echo(ws: WebSocket) -> None:
    await ws.accept()
    message = await ws.receive()
    await ws.send(f"You said: {message}")
    await ws.close()


@routes.websocket_route("/rooms/{room}")
class Room(WebSocketEndpoint):
    encoding = "json"

    async def on_receive(self, ws: WebSocket, data: Any) -> None:
        await ws.send({"room": ws.path_params["room"], "echo": data})


def init_app(argv: list[str] | None = None) -> web.Application:
    app = web.Application()
    aioendpoints.setup(app)
    app.add_routes(routes)
    return app
