"""Typed messages with pydantic models: the same dispatch, errors and replies as msgspec."""

from __future__ import annotations

import subprocess
import sys
from typing import Any, Literal

import pydantic
import pytest

from aioendpoints import WebSocket, WebSocketEndpoint, WebSocketRoutes, on_message
from aioendpoints.testing import WebSocketConnect

from .helpers import make_app


class Say(pydantic.BaseModel):
    type: Literal["say"] = "say"
    text: str


class Add(pydantic.BaseModel):
    type: Literal["add"] = "add"
    a: int
    b: int
    id: int | None = None


class Sum(pydantic.BaseModel):
    type: Literal["sum"] = "sum"
    value: int


class Said(pydantic.BaseModel):
    type: Literal["said"] = "said"
    text: str


class Calculator(WebSocketEndpoint):
    @on_message
    async def say(self, ws: WebSocket, message: Say) -> Said:
        return Said(text=message.text)

    @on_message
    async def add(self, ws: WebSocket, message: Add) -> Sum:
        return Sum(value=message.a + message.b)


def calculator_app(**options: Any) -> Any:
    routes = WebSocketRoutes()
    routes.add_websocket_route("/", Calculator, **options)
    return make_app(routes)


async def test_models_are_dispatched_and_replied(websocket_connect: WebSocketConnect) -> None:
    """Each model goes to its handler; a request gets the reply with its id."""
    ws = await websocket_connect(calculator_app(), "/")
    await ws.send_json({"type": "say", "text": "hi"})
    await ws.expect_json({"type": "said", "text": "hi"})
    await ws.send_json({"type": "add", "a": 1, "b": 2, "id": 3})
    await ws.expect_json({"id": 3, "type": "sum", "value": 3})


@pytest.mark.parametrize(
    ("sent", "error", "path"),
    [
        ({"type": "say", "text": 5}, "Input should be a valid string", "$.text"),
        ({"type": "shout"}, None, "$.type"),
        ({"type": "add", "a": "x", "b": "y", "id": 1}, None, "$.a"),
    ],
)
async def test_invalid_models_get_an_error_with_the_path(
    websocket_connect: WebSocketConnect, sent: Any, error: str | None, path: str
) -> None:
    """pydantic's validation errors become the same error shape, with the field path."""
    ws = await websocket_connect(calculator_app(), "/")
    await ws.send_json(sent)
    reply = await ws.receive_json()
    assert reply["type"] == "error"
    assert reply["path"] == path
    if error is not None:
        assert reply["error"] == error
    if "id" in sent:
        assert reply["id"] == sent["id"]
        assert reply["error"].endswith("(and 1 more)")


async def test_invalid_models_close_with_1007_when_asked(
    websocket_connect: WebSocketConnect,
) -> None:
    """invalid_messages="close" works for pydantic models too."""
    ws = await websocket_connect(calculator_app(invalid_messages="close"), "/")
    await ws.send_text("{")
    _, reason = await ws.expect_close(1007)
    assert reason.startswith("Invalid JSON")


def test_mixing_msgspec_and_pydantic_is_refused() -> None:
    """One endpoint's messages come from one library."""
    import msgspec

    class Ping(msgspec.Struct, tag="ping"):
        pass

    with pytest.raises(TypeError, match="mixes msgspec Structs and pydantic models"):

        class Mixed(WebSocketEndpoint):
            @on_message(Ping)
            async def ping(self, ws: WebSocket, message: Any) -> None: ...

            @on_message(Say)
            async def say(self, ws: WebSocket, message: Any) -> None: ...


def test_models_without_a_discriminator_are_refused() -> None:
    """Models that cannot be told apart by the discriminator are refused at registration."""

    class One(pydantic.BaseModel):
        a: int

    class Two(pydantic.BaseModel):
        b: int

    async def view(ws: WebSocket) -> None: ...

    with pytest.raises(TypeError, match="cannot tell One, Two apart: give each model a Literal"):
        WebSocketRoutes().add_websocket_route("/", view, messages=One | Two)


def test_importing_aioendpoints_imports_neither_library() -> None:
    """msgspec and pydantic stay unimported until a route uses their classes."""
    code = (
        "import sys, aioendpoints, aioendpoints.messages, aioendpoints.testing\n"
        "loaded = [m for m in ('msgspec', 'pydantic') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
