"""The aioendpoints application that the conformance, bad-input and property tests attack.

Echo routes of each value type, plus routes that fail on purpose. ``on_disconnect`` calls
are counted per route so tests can check it runs exactly once.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from aiohttp import web

import aioendpoints
from aioendpoints import WebSocket, WebSocketClose, WebSocketEndpoint, WebSocketRoutes

__all__ = ["DISCONNECTS_KEY", "CountedEndpoint", "MAX_MESSAGE_SIZE", "make_echo_app"]

#: The routes' ``max_msg_size``: small, so tests can exceed it cheaply.
MAX_MESSAGE_SIZE = 64 * 1024
#: Close codes passed to ``on_disconnect``, per endpoint class name.
DISCONNECTS_KEY = web.AppKey("disconnects", list[tuple[str, int]])


class CountedEndpoint(WebSocketEndpoint):
    """Records each `on_disconnect` call in the app, under :data:`DISCONNECTS_KEY`."""

    async def on_disconnect(self, ws: WebSocket, close_code: int) -> None:
        ws.app[DISCONNECTS_KEY].append((type(self).__name__, close_code))


class EchoText(CountedEndpoint):
    encoding = "text"

    async def on_receive(self, ws: WebSocket, data: Any) -> None:
        await ws.send(data)


class EchoBytes(CountedEndpoint):
    encoding = "bytes"

    async def on_receive(self, ws: WebSocket, data: Any) -> None:
        await ws.send(data)


class EchoJSON(CountedEndpoint):
    encoding = "json"

    async def on_receive(self, ws: WebSocket, data: Any) -> None:
        await ws.send(data)


class EchoAny(CountedEndpoint):
    """Echo text as text and bytes as bytes: what the Autobahn cases expect."""

    async def on_receive(self, ws: WebSocket, data: Any) -> None:
        if isinstance(data, str):
            await ws.send_text(data)
        else:
            await ws.send_bytes(data)


class FailOnReceive(CountedEndpoint):
    async def on_receive(self, ws: WebSocket, data: Any) -> None:
        raise RuntimeError("on_receive failed on purpose")


class FailBeforeAccept(CountedEndpoint):
    async def on_connect(self, ws: WebSocket) -> None:
        raise RuntimeError("on_connect failed on purpose, before accept()")


class RefuseByPolicy(CountedEndpoint):
    async def on_receive(self, ws: WebSocket, data: Any) -> None:
        raise WebSocketClose(1008, "rate limit exceeded")


def make_echo_app(**route_options: Any) -> web.Application:
    """A fresh application with every route; ``route_options`` apply to each route."""
    options: dict[str, Any] = {"max_msg_size": MAX_MESSAGE_SIZE, **route_options}
    routes = WebSocketRoutes()
    routes.websocket_route("/text", **options)(EchoText)
    routes.websocket_route("/bytes", **options)(EchoBytes)
    routes.websocket_route("/json", **options)(EchoJSON)
    routes.websocket_route("/echo", **options)(EchoAny)
    routes.websocket_route("/fail-on-receive", **options)(FailOnReceive)
    routes.websocket_route("/fail-before-accept", **options)(FailBeforeAccept)
    routes.websocket_route("/policy", **options)(RefuseByPolicy)
    app = web.Application()
    aioendpoints.setup(app)
    app[DISCONNECTS_KEY] = []
    app.add_routes(routes)
    return app


def disconnect_codes(app: web.Application) -> Counter[tuple[str, int]]:
    """How many times each endpoint's ``on_disconnect`` ran, with which code."""
    return Counter(app[DISCONNECTS_KEY])
