"""The per-message receive and send paths: what each value type takes, returns and refuses."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from aiohttp import WSMsgType, web
from pytest_aiohttp import AiohttpClient

from aioendpoints import (
    WebSocket,
    WebSocketDisconnect,
    WebSocketEndpoint,
    websocket_handler,
)
from aioendpoints.options import ValueType


async def _echo(ws: WebSocket) -> None:
    await ws.accept()
    async for message in ws:
        await ws.send(message)


async def _client_for(aiohttp_client: AiohttpClient, view: Any, **options: Any) -> Any:
    app = web.Application()
    app.router.add_get("/ws", websocket_handler(view, **options))
    return await aiohttp_client(app)


@pytest.mark.parametrize(
    ("value_type", "sent", "kind"),
    [("text", "héllo", WSMsgType.TEXT), ("bytes", b"\x00\xff", WSMsgType.BINARY)],
)
async def test_function_view_echoes_each_value_type(
    aiohttp_client: AiohttpClient, value_type: ValueType, sent: str | bytes, kind: WSMsgType
) -> None:
    """A function view echoes text as text frames and bytes as binary frames."""
    client = await _client_for(aiohttp_client, _echo, value_type=value_type)
    async with client.ws_connect("/ws") as ws:
        for _ in range(3):
            await (ws.send_str(sent) if isinstance(sent, str) else ws.send_bytes(sent))
            message = await ws.receive()
            assert (message.type, message.data) == (kind, sent)


async def test_function_view_echoes_json_as_text_frames(aiohttp_client: AiohttpClient) -> None:
    """A JSON route decodes each text frame and sends the value back as a JSON text frame."""
    client = await _client_for(aiohttp_client, _echo, value_type="json")
    async with client.ws_connect("/ws") as ws:
        await ws.send_str('{"a": [1, 2.5, "é", null]}')
        message = await ws.receive()
        assert message.type is WSMsgType.TEXT
        assert json.loads(message.data) == {"a": [1, 2.5, "é", None]}


@pytest.mark.parametrize(
    ("encoding", "sent", "expected"),
    [
        ("text", "hi", "str:hi"),
        ("bytes", b"hi", "bytes:b'hi'"),
        ("json", '{"x": 1}', "dict:{'x': 1}"),
        (None, b"raw", "bytes:b'raw'"),
        (None, "raw", "str:raw"),
    ],
)
async def test_endpoint_receives_what_its_encoding_says(
    aiohttp_client: AiohttpClient, encoding: ValueType | None, sent: str | bytes, expected: str
) -> None:
    """An endpoint's on_receive gets each message decoded as its encoding says."""

    class Describe(WebSocketEndpoint):
        async def on_receive(self, ws: WebSocket, data: Any) -> None:
            await ws.send_text(f"{type(data).__name__}:{data!s}")

    Describe.encoding = encoding
    client = await _client_for(aiohttp_client, Describe)
    async with client.ws_connect("/ws") as ws:
        await (ws.send_str(sent) if isinstance(sent, str) else ws.send_bytes(sent))
        assert await ws.receive_str() == expected


async def test_frame_of_the_other_kind_closes_with_1003(aiohttp_client: AiohttpClient) -> None:
    """A binary frame on a text route closes the connection with 1003 (unsupported data)."""
    client = await _client_for(aiohttp_client, _echo, value_type="text")
    async with client.ws_connect("/ws") as ws:
        await ws.send_bytes(b"nope")
        message = await ws.receive()
        assert (message.type, message.data) == (WSMsgType.CLOSE, 1003)


async def test_invalid_json_closes_with_1007(aiohttp_client: AiohttpClient) -> None:
    """A text frame that is not JSON on a JSON route closes the connection with 1007."""
    client = await _client_for(aiohttp_client, _echo, value_type="json")
    async with client.ws_connect("/ws") as ws:
        await ws.send_str("{not json")
        message = await ws.receive()
        assert (message.type, message.data) == (WSMsgType.CLOSE, 1007)


async def test_invalid_utf8_closes_with_1007(aiohttp_client: AiohttpClient) -> None:
    """A text frame that is not UTF-8 on a JSON route closes the connection with 1007."""
    client = await _client_for(aiohttp_client, _echo, value_type="json")
    async with client.ws_connect("/ws") as ws:
        # aiohttp's client only sends valid str; its frame writer sends any bytes.
        await ws._writer.send_frame(b'"\xff\xfe"', WSMsgType.TEXT)
        message = await ws.receive()
        assert (message.type, message.data) == (WSMsgType.CLOSE, 1007)


async def test_user_dumps_and_loads_are_used(aiohttp_client: AiohttpClient) -> None:
    """A route's own dumps and loads encode and decode its JSON messages."""

    def loads(text: str) -> Any:
        return {"loaded": json.loads(text)}

    def dumps(value: Any) -> str:
        return json.dumps({"dumped": value})

    client = await _client_for(aiohttp_client, _echo, value_type="json", dumps=dumps, loads=loads)
    async with client.ws_connect("/ws") as ws:
        await ws.send_str("7")
        assert json.loads(await ws.receive_str()) == {"dumped": {"loaded": 7}}


@pytest.mark.parametrize(("send_type", "value"), [("text", b"bytes"), ("bytes", "text")])
async def test_send_of_the_wrong_type_closes_with_1011(
    aiohttp_client: AiohttpClient, send_type: ValueType, value: Any
) -> None:
    """send() of a value its send type cannot carry is a server error: 1011."""

    async def view(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send(value)

    client = await _client_for(aiohttp_client, view, send_type=send_type)
    async with client.ws_connect("/ws") as ws:
        message = await ws.receive()
        assert (message.type, message.data) == (WSMsgType.CLOSE, 1011)


async def test_send_type_set_on_the_connection_is_used(aiohttp_client: AiohttpClient) -> None:
    """Changing ws.send_type after accept() changes what send() sends."""

    async def view(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send("as text")
        ws.send_type = "json"
        await ws.send({"as": "json"})
        ws.value_type = "bytes"
        await ws.send(await ws.receive())

    client = await _client_for(aiohttp_client, view)
    async with client.ws_connect("/ws") as ws:
        assert await ws.receive_str() == "as text"
        assert json.loads(await ws.receive_str()) == {"as": "json"}
        await ws.send_bytes(b"\x01")
        assert await ws.receive_bytes() == b"\x01"


async def test_receive_after_the_peer_closed_raises_disconnect(
    aiohttp_client: AiohttpClient,
) -> None:
    """Every receive after the peer's close frame raises WebSocketDisconnect with its code."""
    codes: list[int] = []
    done = asyncio.Event()

    async def view(ws: WebSocket) -> None:
        await ws.accept()
        for _ in range(2):
            try:
                await ws.receive()
            except WebSocketDisconnect as disconnect:
                codes.append(disconnect.code)
        done.set()

    client = await _client_for(aiohttp_client, view)
    async with client.ws_connect("/ws") as ws:
        await ws.close(code=4001)
    await asyncio.wait_for(done.wait(), 5)
    assert codes == [4001, 4001]


async def test_async_for_ends_on_a_caught_close(aiohttp_client: AiohttpClient) -> None:
    """async for over the socket stops cleanly when the peer closes with 1000."""
    received: list[str] = []
    done = asyncio.Event()

    async def view(ws: WebSocket) -> None:
        await ws.accept()
        async for message in ws:
            received.append(message)
        done.set()

    client = await _client_for(aiohttp_client, view)
    async with client.ws_connect("/ws") as ws:
        await ws.send_str("one")
        await ws.send_str("two")
        await ws.close()
    await asyncio.wait_for(done.wait(), 5)
    assert received == ["one", "two"]


async def test_send_after_close_raises_disconnect(aiohttp_client: AiohttpClient) -> None:
    """send() after the connection closed raises WebSocketDisconnect with the close code."""
    outcome: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def view(ws: WebSocket) -> None:
        await ws.accept()
        await ws.close(4002)
        try:
            await ws.send("late")
        except WebSocketDisconnect as disconnect:
            outcome.set_result(disconnect.code)

    client = await _client_for(aiohttp_client, view)
    async with client.ws_connect("/ws") as ws:
        await ws.receive()
    assert await asyncio.wait_for(outcome, 5) == 4002
