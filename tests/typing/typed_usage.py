"""User code of typed messages, checked by ``mypy --strict`` (tests/test_typing.py)."""

from __future__ import annotations

from typing import Any, Literal

import msgspec
import pydantic
from aiohttp import web

import aioendpoints
from aioendpoints import (
    MessageRejected,
    WebSocket,
    WebSocketEndpoint,
    WebSocketRoutes,
    on_message,
)
from aioendpoints.testing import WebSocketTestClient


class Say(msgspec.Struct, tag="say"):
    text: str


class Said(msgspec.Struct, tag="said"):
    text: str
    by: str


class Ping(pydantic.BaseModel):
    type: Literal["ping"] = "ping"


routes = WebSocketRoutes()


@routes.websocket_route("/rooms/{room}", invalid_messages="close", request_id="rid")
class Room(WebSocketEndpoint):
    @on_message
    async def say(self, ws: WebSocket, message: Say) -> Said:
        if not message.text:
            raise MessageRejected("empty")
        await ws.publish("room", Said(text=message.text, by="me"))
        return Said(text=message.text, by="me")

    @on_message(Say)
    async def also(self, ws: WebSocket, message: Any) -> None:
        await ws.send(Said(text="", by=""))


@routes.websocket_route("/ping", messages=Ping, send_messages=(Ping,))
async def ping(ws: WebSocket) -> None:
    await ws.accept()
    async for message in ws:
        await ws.send(message)


def init_app() -> web.Application:
    app = web.Application()
    aioendpoints.setup(app, asyncapi="/asyncapi.json", asyncapi_title="Typed", asyncapi_version="1")
    app.add_routes(routes)
    document: dict[str, Any] = aioendpoints.asyncapi(app, title="Typed", version="1")
    assert document["asyncapi"] == "3.0.0"
    return app


async def client_side(ws: WebSocketTestClient) -> str:
    await ws.send_message(Say(text="hi"))
    said: Said = await ws.expect_message(Said(text="hi", by="me"))
    again = await ws.receive_message(Said)
    either = await ws.receive_message(Said | Say)
    assert isinstance(either, Said | Say)
    return said.by + again.text
