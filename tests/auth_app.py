"""An app whose route takes a token from the query string, served in process and by gunicorn."""

from __future__ import annotations

import logging

from aiohttp import web

import aioendpoints
from aioendpoints import WebSocket, WebSocketRoutes
from aioendpoints.auth import QueryToken, RedactingAccessLogger, StaticTokens, TokenAuth

#: The one token the app accepts, for the user ``alice``.
TOKEN = "s3cret-token-value"


def token_app() -> web.Application:
    """``/ws?access_token=...`` greets the token's user, then waits for the client to go."""
    routes = WebSocketRoutes()

    @routes.websocket_route(
        "/ws", authenticate=TokenAuth(StaticTokens({TOKEN: "alice"}), QueryToken("access_token"))
    )
    async def greet(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send(f"hello {ws.principal}")
        await ws.receive()

    app = web.Application()
    aioendpoints.setup(app)
    app.add_routes(routes)
    return app


async def gunicorn_runner() -> web.AppRunner:
    """For gunicorn's aiohttp worker: the app in a runner with the redacting access log."""
    return web.AppRunner(
        token_app(),
        access_log_class=RedactingAccessLogger,
        access_log=logging.getLogger("gunicorn.access"),
    )
