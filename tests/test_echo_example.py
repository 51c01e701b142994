"""The Bocadillo guide's echo example, with only the app object changed, works as written."""

from __future__ import annotations

from aiohttp import WSMsgType, web
from pytest_aiohttp import AiohttpClient

import aioendpoints
from aioendpoints import WebSocket, WebSocketRoutes

routes = WebSocketRoutes()


@routes.websocket_route("/echo")
async def echo(ws: WebSocket) -> None:
    await ws.accept()
    message = await ws.receive()
    await ws.send(f"You said: {message}")
    await ws.close()


def init_app(argv: list[str] | None = None) -> web.Application:
    app = web.Application()
    aioendpoints.setup(app)  # app-wide parts: connection registry, graceful shutdown
    app.add_routes(routes)  # also into an existing app, next to its HTTP routes
    return app


async def test_echo_answers_and_closes_normally(aiohttp_client: AiohttpClient) -> None:
    """The guide's echo view answers once, then closes with 1000."""
    client = await aiohttp_client(init_app())
    async with client.ws_connect("/echo") as ws:
        await ws.send_str("hello")
        assert await ws.receive_str(timeout=5) == "You said: hello"
        closing = await ws.receive(timeout=5)
        assert closing.type is WSMsgType.CLOSE
        assert closing.data == 1000


async def test_examples_echo_module_serves_the_same_view(aiohttp_client: AiohttpClient) -> None:
    """examples/echo.py, the app the README launches, serves the guide's echo."""
    from examples.echo import init_app as example_init_app

    client = await aiohttp_client(example_init_app())
    async with client.ws_connect("/echo") as ws:
        await ws.send_str("hi")
        assert await ws.receive_str(timeout=5) == "You said: hi"
