"""The chat example's server: rooms, members, relayed messages and validation."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from aioendpoints.testing import WebSocketConnect, WebSocketTestClient
from examples.chat import init_app


async def join(
    websocket_connect: WebSocketConnect, app: web.Application, name: str, room: str = "lobby"
) -> WebSocketTestClient:
    """Join ``room`` as ``name`` and read the two messages every join produces."""
    ws = await websocket_connect(app, f"/ws/rooms/{room}?name={name}")
    await ws.expect_json({"type": "joined", "name": name})
    await receive_type(ws, "members")
    return ws


async def receive_type(ws: WebSocketTestClient, kind: str) -> dict[str, Any]:
    """The next message, which must be of type ``kind``."""
    message = await ws.receive_json()
    assert message["type"] == kind, message
    return dict(message)


async def test_joining_lists_the_members_in_order(websocket_connect: WebSocketConnect) -> None:
    """Everyone in the room learns who joined and the new list of members."""
    app = init_app()
    ada = await join(websocket_connect, app, "Ada")
    bob = await websocket_connect(app, "/ws/rooms/lobby?name=Bob")
    for ws in (ada, bob):
        await ws.expect_json({"type": "joined", "name": "Bob"})
        await ws.expect_json({"type": "members", "members": ["Ada", "Bob"]})


async def test_a_message_reaches_everyone_in_the_room(websocket_connect: WebSocketConnect) -> None:
    """A message is relayed to every member, the sender included, with name and time."""
    app = init_app()
    ada = await join(websocket_connect, app, "Ada")
    bob = await join(websocket_connect, app, "Bob")
    await receive_type(ada, "joined")
    await receive_type(ada, "members")
    await ada.send_json({"type": "message", "text": " hello "})
    for ws in (ada, bob):
        message = await receive_type(ws, "message")
        assert (message["name"], message["text"]) == ("Ada", "hello")
        assert message["time"].endswith("+00:00")


async def test_rooms_are_separate(websocket_connect: WebSocketConnect) -> None:
    """A message in one room does not reach another room."""
    app = init_app()
    ada = await join(websocket_connect, app, "Ada", room="red")
    bob = await join(websocket_connect, app, "Bob", room="blue")
    await ada.send_json({"type": "message", "text": "only red"})
    assert (await receive_type(ada, "message"))["text"] == "only red"
    await bob.send_json({"type": "message", "text": "only blue"})
    assert (await receive_type(bob, "message"))["text"] == "only blue"


async def test_leaving_tells_the_others(websocket_connect: WebSocketConnect) -> None:
    """When a member leaves, the others get a notice and the new list of members."""
    app = init_app()
    ada = await join(websocket_connect, app, "Ada")
    bob = await join(websocket_connect, app, "Bob")
    await receive_type(ada, "joined")
    await receive_type(ada, "members")
    await bob.close()
    await ada.expect_json({"type": "left", "name": "Bob"})
    await ada.expect_json({"type": "members", "members": ["Ada"]})


async def test_a_malformed_message_gets_an_error_back(websocket_connect: WebSocketConnect) -> None:
    """Valid JSON that is not a chat message is answered with an error; the socket stays open."""
    ws = await join(websocket_connect, init_app(), "Ada")
    await ws.send_json(["not", "an", "object"])
    await ws.expect_json({"type": "error", "error": "expected a JSON object, got list"})
    await ws.send_json({"type": "shout", "text": "hi"})
    await ws.expect_json({"type": "error", "error": "unknown message type 'shout'"})
    await ws.send_json({"type": "message", "text": "   "})
    await ws.expect_json({"type": "error", "error": "empty message"})
    await ws.send_json({"type": "message", "text": "still here"})
    assert (await receive_type(ws, "message"))["text"] == "still here"


async def test_invalid_json_closes_with_1007(websocket_connect: WebSocketConnect) -> None:
    """A text frame that is not JSON closes the connection with 1007 (invalid payload)."""
    ws = await join(websocket_connect, init_app(), "Ada")
    await ws.send_text("{not json")
    await ws.expect_close(1007, "invalid JSON")


async def test_a_binary_frame_closes_with_1003(websocket_connect: WebSocketConnect) -> None:
    """A binary frame closes the connection with 1003 (unsupported data)."""
    ws = await join(websocket_connect, init_app(), "Ada")
    await ws.send_bytes(b"\x00\x01")
    code, _ = await ws.expect_close(1003)
    assert code == 1003


async def test_a_missing_name_closes_with_1008(websocket_connect: WebSocketConnect) -> None:
    """Joining without a name closes with 1008 and a reason the page can show."""
    ws = await websocket_connect(init_app(), "/ws/rooms/lobby?name=%20")
    await ws.expect_close(1008, "pick a name")


async def test_an_invalid_room_name_is_not_found(aiohttp_client: Any) -> None:
    """A room name outside the allowed characters is an HTTP 404, not a WebSocket."""
    client = await aiohttp_client(init_app())
    response = await client.get("/ws/rooms/no%20spaces")
    assert response.status == 404


async def test_echo_answers_as_in_the_guide(websocket_connect: WebSocketConnect) -> None:
    """``/echo`` answers "You said: <message>" and closes normally."""
    ws = await websocket_connect(init_app(), "/echo")
    await ws.send_text("hi")
    await ws.expect_text("You said: hi")
    await ws.expect_close(1000)


async def test_the_page_is_served(aiohttp_client: Any) -> None:
    """``/`` serves the chat page, and its script and stylesheet are reachable."""
    client = await aiohttp_client(init_app())
    page = await client.get("/")
    assert page.status == 200
    assert "aioendpoints chat" in await page.text()
    for asset in ("/static/chat.js", "/static/chat.css"):
        assert (await client.get(asset)).status == 200
