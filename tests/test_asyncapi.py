"""The AsyncAPI document of an app's WebSocket routes, its HTML page, and the official parser."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, Literal

import msgspec
import pydantic
import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpClient

import aioendpoints
from aioendpoints import WebSocket, WebSocketEndpoint, WebSocketRoutes, on_message
from examples.chat import init_app as chat_app

from .conftest import service_missing

VALIDATOR = Path(__file__).with_name("validate_asyncapi.js")
PARSER_ENV = "AIOENDPOINTS_ASYNCAPI_PARSER"


class Say(msgspec.Struct, tag="say"):
    """Say something to the room."""

    text: str


class Said(msgspec.Struct, tag="said"):
    """Someone said something."""

    text: str
    by: str
    at: list[int] = []


class Ping(pydantic.BaseModel):
    """Are you there?"""

    type: Literal["ping"] = "ping"
    id: int


class Pong(pydantic.BaseModel):
    """Yes."""

    type: Literal["pong"] = "pong"


def every_kind_of_route() -> web.Application:
    """An app with a route of each kind: typed endpoints and views, text, bytes, JSON, raw."""
    routes = WebSocketRoutes()

    @routes.websocket_route(r"/rooms/{room:[a-z]+}")
    class Room(WebSocketEndpoint):
        """A chat room."""

        @on_message
        async def say(self, ws: WebSocket, message: Say) -> Said:
            return Said(text=message.text, by="someone")

    @routes.websocket_route("/ping")
    class Pinger(WebSocketEndpoint):
        @on_message
        async def ping(self, ws: WebSocket, message: Ping) -> Pong:
            return Pong()

    @routes.websocket_route("/view/{number}", messages=Say, send_messages=Said, request_id="rid")
    async def typed_view(ws: WebSocket, number: int) -> None:
        """A function view with typed messages."""

    @routes.websocket_route("/text")
    async def text(ws: WebSocket) -> None: ...

    @routes.websocket_route("/bytes", value_type="bytes")
    async def data(ws: WebSocket) -> None: ...

    @routes.websocket_route("/json", value_type="json")
    async def json_view(ws: WebSocket) -> None: ...

    @routes.websocket_route("/raw")
    class Raw(WebSocketEndpoint):
        pass

    app = web.Application()
    aioendpoints.setup(app, asyncapi="/asyncapi.json", asyncapi_title="Every kind")
    app.add_routes(routes)
    app.router.add_get("/plain-http", plain_http)
    return app


async def plain_http(request: web.Request) -> web.Response:
    return web.Response()


def document() -> dict[str, Any]:
    return aioendpoints.asyncapi(every_kind_of_route(), title="Every kind", version="2.0")


def test_one_channel_per_route_with_its_address_and_parameters() -> None:
    """Each WebSocket route is a channel; plain HTTP routes are not."""
    channels = document()["channels"]
    addresses = sorted(channel["address"] for channel in channels.values())
    assert addresses == [
        "/bytes",
        "/json",
        "/ping",
        "/raw",
        "/rooms/{room}",
        "/text",
        "/view/{number}",
    ]
    room = channels["rooms_room"]
    assert room["description"] == "A chat room."
    assert "[a-z]+" in room["parameters"]["room"]["description"]
    assert set(channels["view_number"]["parameters"]) == {"number"}


def test_typed_messages_get_schemas_from_their_library() -> None:
    """msgspec's and pydantic's schema generators describe the message classes."""
    spec = document()
    schemas = spec["components"]["schemas"]
    assert schemas["Say"]["properties"]["type"] == {"enum": ["say"]}
    assert schemas["Say"]["required"] == ["type", "text"]
    assert schemas["Said"]["properties"]["at"]["type"] == "array"
    assert schemas["Ping"]["properties"]["id"]["type"] == "integer"
    assert schemas["Ping"]["properties"]["type"]["const"] == "ping"
    message = spec["components"]["messages"]["Say"]
    assert message["summary"] == "Say something to the room."
    assert message["payload"] == {"$ref": "#/components/schemas/Say"}
    assert message["examples"] == [{"name": "Say", "payload": {"type": "say", "text": "text"}}]


def test_operations_say_who_sends_what() -> None:
    """The client's messages are the app's receive operation; the replies and errors its send."""
    operations = document()["operations"]
    receive, send = operations["rooms_room_receive"], operations["rooms_room_send"]
    assert receive["action"] == "receive"
    assert receive["channel"] == {"$ref": "#/channels/rooms_room"}
    assert receive["messages"] == [{"$ref": "#/channels/rooms_room/messages/Say"}]
    assert send["action"] == "send"
    assert send["messages"] == [
        {"$ref": "#/channels/rooms_room/messages/Said"},
        {"$ref": "#/channels/rooms_room/messages/error"},
    ]
    view_send = operations["view_number_send"]["messages"]
    assert view_send[-1] == {"$ref": "#/channels/view_number/messages/error_rid"}


def test_plain_routes_are_described_by_content_type() -> None:
    """Text, bytes and JSON routes have messages of their content type; raw endpoints both."""
    spec = document()
    messages = spec["components"]["messages"]
    channels = spec["channels"]
    assert list(channels["text"]["messages"]) == ["text"]
    assert messages["text"]["contentType"] == "text/plain"
    assert messages["bytes"]["contentType"] == "application/octet-stream"
    assert messages["json"]["contentType"] == "application/json"
    assert list(channels["raw"]["messages"]) == ["text", "bytes"]


async def test_setup_serves_the_document_and_its_page(aiohttp_client: AiohttpClient) -> None:
    """setup(asyncapi=...) serves the JSON document and an HTML page with no outside links."""
    client = await aiohttp_client(every_kind_of_route())
    response = await client.get("/asyncapi.json")
    assert response.status == 200
    served = await response.json()
    assert served["info"] == {"title": "Every kind", "version": "1.0.0"}
    assert served["channels"] == document()["channels"]
    response = await client.get("/asyncapi.html")
    assert response.status == 200
    assert response.content_type == "text/html"
    page = await response.text()
    assert "<code>/rooms/{room}</code>" in page
    assert "Say something to the room." in page
    assert "<td><code>text</code></td><td>string</td><td>required</td>" in page
    assert "&quot;type&quot;: &quot;said&quot;" in page  # an example
    assert "<script" not in page
    assert "http://" not in page
    assert "https://" not in page


def test_routes_of_sub_applications_are_described_under_their_prefix() -> None:
    """A sub-application's WebSocket routes are channels too, at their full path."""
    routes = WebSocketRoutes()

    @routes.websocket_route("/echo/{name}")
    async def echo(ws: WebSocket, name: str) -> None: ...

    inner = web.Application()
    inner.add_routes(routes)
    app = web.Application()
    app.add_subapp("/api/", inner)
    channels = aioendpoints.asyncapi(app, title="Nested", version="1")["channels"]
    assert [channel["address"] for channel in channels.values()] == ["/api/echo/{name}"]
    assert set(channels["api_echo_name"]["parameters"]) == {"name"}


def test_the_asyncapi_path_must_be_absolute() -> None:
    """A relative path for the document is refused."""
    with pytest.raises(ValueError, match="must be a path starting with '/'"):
        aioendpoints.setup(web.Application(), asyncapi="asyncapi.json")


# The official parser ---------------------------------------------------------------------


def validate(documents: dict[str, dict[str, Any]], tmp_path: Path) -> dict[str, list[Any]]:
    """Run @asyncapi/parser on each document; return each one's diagnostics."""
    parser_dir = os.environ.get(PARSER_ENV)
    if not parser_dir:
        service_missing(f"{PARSER_ENV} is not set (.ci/run installs @asyncapi/parser)")
    assert parser_dir is not None
    node = shutil.which("node")
    if node is None:
        service_missing("Node.js is not installed")
    assert node is not None
    if not (Path(parser_dir) / "node_modules" / "@asyncapi" / "parser").is_dir():
        service_missing(f"@asyncapi/parser is not installed in {parser_dir}")
    files = []
    for name, value in documents.items():
        file = tmp_path / f"{name}.json"
        file.write_text(json.dumps(value))
        files.append(str(file))
    result = subprocess.run(
        [node, str(VALIDATOR), parser_dir, *files],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    return {Path(line["file"]).stem: line["diagnostics"] for line in lines}


def errors(diagnostics: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [diagnostic for diagnostic in diagnostics if diagnostic["severity"] == 0]


def test_the_parser_finds_no_error_in_the_documents(tmp_path: Path) -> None:
    """@asyncapi/parser 3 finds no error nor warning in the demo's and every-kind documents."""
    found = validate(
        {
            "demo": aioendpoints.asyncapi(chat_app(), title="Chat", version="1.0.0"),
            "every_kind": document(),
        },
        tmp_path,
    )
    assert set(found) == {"demo", "every_kind"}
    for name, diagnostics in found.items():
        assert errors(diagnostics) == [], name
        warnings = [item for item in diagnostics if item["severity"] == 1]
        assert warnings == [], name


def test_the_parser_check_catches_a_broken_document(tmp_path: Path) -> None:
    """The check can fail: a dangling message reference is an error for the parser."""
    broken = document()
    del broken["components"]["messages"]["Say"]
    found = validate({"broken": broken}, tmp_path)
    assert errors(found["broken"]), found
