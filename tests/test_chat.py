"""The chat example's server: rooms, members, relayed messages and validation."""

from __future__ import annotations

import re
from typing import Any

import itsdangerous
import pytest
from aiohttp import WSServerHandshakeError, web

from aioendpoints.testing import WebSocketConnect, WebSocketTestClient
from examples.chat import init_app
from examples.chat.login import COOKIE, SIGNER_KEY


def logged_in(app: web.Application, name: str) -> dict[str, str]:
    """Handshake headers with ``name``'s login cookie, as ``/login`` signs it."""
    return {"Cookie": f"{COOKIE}={app[SIGNER_KEY].dumps(name)}"}


async def join(
    websocket_connect: WebSocketConnect, app: web.Application, name: str, room: str = "lobby"
) -> WebSocketTestClient:
    """Join ``room`` as ``name`` and read the three messages every join produces."""
    ws = await websocket_connect(app, f"/ws/rooms/{room}", headers=logged_in(app, name))
    await receive_type(ws, "welcome")
    await receive_type(ws, "present")
    await receive_type(ws, "joined")
    return ws


async def receive_type(ws: WebSocketTestClient, kind: str) -> dict[str, Any]:
    """The next message (a room frame's data), which must be of type ``kind``."""
    message = await ws.receive_json()
    if "offset" in message:  # the room keeps a history: its messages come positioned
        message = message["data"]
    assert message["type"] == kind, message
    return dict(message)


def names(present: dict[str, Any]) -> list[str]:
    """The names in a ``present`` message."""
    return [member["name"] for member in present["members"]]


async def test_a_new_member_learns_its_ids(websocket_connect: WebSocketConnect) -> None:
    """The first message gives the member its own id and its server's id."""
    app = init_app()
    ws = await websocket_connect(app, "/ws/rooms/lobby", headers=logged_in(app, "Ada"))
    welcome = await receive_type(ws, "welcome")
    assert re.fullmatch("[0-9a-f]{32}", welcome["id"])
    assert re.fullmatch("[0-9a-f]{32}", welcome["server"])
    assert welcome["id"] != welcome["server"]


async def test_a_new_member_gets_the_members_here(websocket_connect: WebSocketConnect) -> None:
    """A newcomer is sent the room's members in this process, itself included, by name."""
    app = init_app()
    await join(websocket_connect, app, "Bob")
    await join(websocket_connect, app, "ada")
    cy = await websocket_connect(app, "/ws/rooms/lobby", headers=logged_in(app, "Cy"))
    cy_id = (await receive_type(cy, "welcome"))["id"]
    present = await receive_type(cy, "present")
    assert names(present) == ["ada", "Bob", "Cy"]
    assert cy_id in [member["id"] for member in present["members"]]


async def test_joining_is_announced_to_the_room(websocket_connect: WebSocketConnect) -> None:
    """Everyone in the room, the newcomer included, learns its id, name and server."""
    app = init_app()
    ada = await join(websocket_connect, app, "Ada")
    bob = await websocket_connect(app, "/ws/rooms/lobby", headers=logged_in(app, "Bob"))
    welcome = await receive_type(bob, "welcome")
    await receive_type(bob, "present")
    for ws in (ada, bob):
        assert await receive_type(ws, "joined") == {**welcome, "type": "joined", "name": "Bob"}


async def test_a_message_reaches_everyone_in_the_room(websocket_connect: WebSocketConnect) -> None:
    """A message is relayed to every member, the sender included, with name and time."""
    app = init_app()
    ada = await join(websocket_connect, app, "Ada")
    bob = await join(websocket_connect, app, "Bob")
    await receive_type(ada, "joined")
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
    """When a member leaves, the others are told its id and name."""
    app = init_app()
    ada = await join(websocket_connect, app, "Ada")
    bob = await join(websocket_connect, app, "Bob")
    bob_id = (await receive_type(ada, "joined"))["id"]
    await bob.close()
    assert await receive_type(ada, "left") == {"type": "left", "id": bob_id, "name": "Bob"}


async def test_a_presence_answer_reaches_only_the_newcomer(
    websocket_connect: WebSocketConnect,
) -> None:
    """``present`` to a member id is delivered to that member alone, naming the sender."""
    app = init_app()
    ada = await join(websocket_connect, app, "Ada")
    bob = await join(websocket_connect, app, "Bob")
    cy = await join(websocket_connect, app, "Cy")
    await receive_type(ada, "joined")  # Bob's
    cy_id = (await receive_type(ada, "joined"))["id"]
    await ada.send_json({"type": "present", "to": cy_id})
    present = await receive_type(cy, "present")
    assert names(present) == ["Ada"]
    await ada.send_json({"type": "message", "text": "after"})
    await receive_type(bob, "joined")  # Cy's
    assert (await receive_type(bob, "message"))["text"] == "after"


async def test_a_malformed_message_gets_an_error_back(websocket_connect: WebSocketConnect) -> None:
    """A message that is not a chat message is answered with an error; the socket stays open."""
    ws = await join(websocket_connect, init_app(), "Ada")
    await ws.send_json(["not", "an", "object"])
    await ws.expect_json({"type": "error", "error": "Expected `object`, got `array`", "path": None})
    await ws.send_json({"type": "shout", "text": "hi"})
    await ws.expect_json({"type": "error", "error": "Invalid value 'shout'", "path": "$.type"})
    await ws.send_json({"type": "message", "text": "   "})
    await ws.expect_json({"type": "error", "error": "empty message", "path": None})
    await ws.send_json({"type": "present", "to": "someone"})
    await ws.expect_json(
        {
            "type": "error",
            "error": "Expected `str` matching regex '^[0-9a-f]{32}$'",
            "path": "$.to",
        }
    )
    await ws.send_json({"type": "message", "text": "x" * 2001})
    await ws.expect_json(
        {"type": "error", "error": "Expected `str` of length <= 2000", "path": "$.text"}
    )
    await ws.send_json({"type": "message", "text": "still here"})
    assert (await receive_type(ws, "message"))["text"] == "still here"


async def test_invalid_json_gets_an_error_back(websocket_connect: WebSocketConnect) -> None:
    """A text frame that is not JSON gets an error too, and the socket stays open."""
    ws = await join(websocket_connect, init_app(), "Ada")
    await ws.send_text("{not json")
    error = await receive_type(ws, "error")
    assert error["error"].startswith("JSON is malformed")
    await ws.send_json({"type": "message", "text": "still here"})
    assert (await receive_type(ws, "message"))["text"] == "still here"


async def test_a_binary_frame_closes_with_1003(websocket_connect: WebSocketConnect) -> None:
    """A binary frame closes the connection with 1003 (unsupported data)."""
    ws = await join(websocket_connect, init_app(), "Ada")
    await ws.send_bytes(b"\x00\x01")
    code, _ = await ws.expect_close(1003)
    assert code == 1003


async def test_a_blank_name_cannot_log_in(aiohttp_client: Any) -> None:
    """/login refuses a blank name with 400 and a reason the page can show; no cookie."""
    client = await aiohttp_client(init_app())
    response = await client.post("/login", data={"name": " "})
    assert (response.status, await response.text()) == (400, "pick a name")
    assert COOKIE not in response.cookies


async def test_login_sets_a_signed_cookie_that_the_room_takes(aiohttp_client: Any) -> None:
    """/login's cookie is HttpOnly and SameSite=Strict, and joins the room under its name."""
    client = await aiohttp_client(init_app())
    response = await client.post("/login", data={"name": " Ada "})
    assert await response.json() == {"name": "Ada"}
    cookie = response.cookies[COOKIE]
    assert (cookie["httponly"], cookie["samesite"]) == (True, "Strict")
    headers = {"Cookie": f"{COOKIE}={cookie.value}"}
    # A name in the query string is not taken: the cookie's is.
    async with client.ws_connect("/ws/rooms/lobby?name=Mallory", headers=headers) as ws:
        await ws.receive_json()  # welcome
        present = await ws.receive_json()
        assert names(present) == ["Ada"]


async def test_another_site_cannot_log_its_visitors_in(aiohttp_client: Any) -> None:
    """A form on another site posting to /login gets 403 and sets no cookie."""
    client = await aiohttp_client(init_app())
    response = await client.post(
        "/login", data={"name": "Mallory"}, headers={"Origin": "https://evil.example"}
    )
    assert response.status == 403
    assert COOKIE not in response.cookies


@pytest.mark.parametrize(
    "cookie",
    [
        None,
        "not-a-signed-value",
        itsdangerous.URLSafeTimedSerializer("another key", salt="chat-login").dumps("Ada"),
    ],
    ids=["missing", "malformed", "forged"],
)
async def test_without_a_valid_login_the_room_answers_401(
    aiohttp_client: Any, cookie: str | None
) -> None:
    """No login cookie, or one the server did not sign: HTTP 401 before the upgrade."""
    client = await aiohttp_client(init_app())
    headers = {} if cookie is None else {"Cookie": f"{COOKIE}={cookie}"}
    with pytest.raises(WSServerHandshakeError) as refusal:
        await client.ws_connect("/ws/rooms/lobby?name=Ada", headers=headers)
    assert refusal.value.status == 401


async def test_a_tampered_login_is_refused(aiohttp_client: Any) -> None:
    """Changing the name in a signed cookie breaks its signature: 401."""
    app = init_app()
    client = await aiohttp_client(app)
    signed = app[SIGNER_KEY].dumps("Bob")
    signature = signed.partition(".")[2]
    tampered = app[SIGNER_KEY].dumps("Eve").partition(".")[0] + "." + signature
    assert tampered != signed
    with pytest.raises(WSServerHandshakeError) as refusal:
        await client.ws_connect("/ws/rooms/lobby", headers={"Cookie": f"{COOKIE}={tampered}"})
    assert refusal.value.status == 401


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


async def test_the_page_links_to_the_protocol(aiohttp_client: Any) -> None:
    """The chat page links to the AsyncAPI page of its protocol, which the app serves."""
    client = await aiohttp_client(init_app())
    page = await (await client.get("/")).text()
    assert 'href="/asyncapi.html"' in page
    response = await client.get("/asyncapi.html")
    assert response.status == 200
    protocol = await response.text()
    assert "<code>/ws/rooms/{room}</code>" in protocol
    for message in ("Say", "Present", "Welcome", "Members", "Joined", "Left", "ChatMessage"):
        assert f"<h3>{message} " in protocol
