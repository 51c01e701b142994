"""Mistakes in user code of typed messages that ``mypy --strict`` must report."""

from __future__ import annotations

import msgspec

from aioendpoints import WebSocketEndpoint, on_message
from aioendpoints.testing import WebSocketTestClient


class Said(msgspec.Struct, tag="said"):
    text: str


async def wrong_type(ws: WebSocketTestClient) -> int:
    return await ws.receive_message(Said)  # error: returns Said, not int


async def wrong_attribute(ws: WebSocketTestClient) -> str:
    said = await ws.expect_message(Said(text="hi"))
    return said.txt  # error: Said has no attribute txt


class NotAsync(WebSocketEndpoint):
    @on_message  # error: a handler must be async
    def say(self, ws: object, message: Said) -> None: ...
