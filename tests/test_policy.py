"""The close-code policy: what the client gets for each way a connection ends."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestClient

import aioendpoints
from aioendpoints import InvalidData, WebSocket, WebSocketEndpoint, WebSocketRoutes
from aioendpoints.policy import check_close_codes, peer_close_reply

ClientFactory = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]


@pytest.fixture
def make_client(aiohttp_client: Any) -> ClientFactory:
    """Serve an application on a real socket and return its test client."""

    async def make(app: web.Application) -> TestClient[Any, Any]:
        return await aiohttp_client(app)  # type: ignore[no-any-return]

    return make


def app_with(routes: WebSocketRoutes) -> web.Application:
    app = web.Application()
    aioendpoints.setup(app)
    app.add_routes(routes)
    return app


class Recorder:
    """Remembers the close codes that on_disconnect saw."""

    def __init__(self) -> None:
        self.codes: list[int] = []
        self.done = asyncio.Event()

    def record(self, code: int) -> None:
        self.codes.append(code)
        self.done.set()

    async def wait(self) -> list[int]:
        await asyncio.wait_for(self.done.wait(), 5)
        return self.codes


def recording_endpoint(recorder: Recorder, encoding: Any = None) -> type[WebSocketEndpoint]:
    class Recording(WebSocketEndpoint):
        async def on_receive(self, ws: WebSocket, data: Any) -> None:
            await ws.send(data)

        async def on_disconnect(self, ws: WebSocket, close_code: int) -> None:
            recorder.record(close_code)

    Recording.encoding = encoding
    return Recording


async def test_binary_frame_on_text_route_closes_1003(make_client: ClientFactory) -> None:
    """A binary frame where text is expected closes the connection with 1003."""
    routes = WebSocketRoutes()

    @routes.websocket_route("/text")
    async def text(ws: WebSocket) -> None:
        await ws.accept()
        await ws.receive()

    client = await make_client(app_with(routes))
    async with client.ws_connect("/text") as ws:
        await ws.send_bytes(b"\x00")
        message = await ws.receive()
    assert (message.type, message.data) == (WSMsgType.CLOSE, 1003)


async def test_text_frame_on_bytes_endpoint_closes_1003(make_client: ClientFactory) -> None:
    """A text frame on an endpoint with encoding "bytes" closes with 1003, on_disconnect too."""
    recorder = Recorder()
    routes = WebSocketRoutes()
    routes.add_websocket_route("/bytes", recording_endpoint(recorder, "bytes"))
    client = await make_client(app_with(routes))
    async with client.ws_connect("/bytes") as ws:
        await ws.send_str("text")
        message = await ws.receive()
    assert (message.type, message.data) == (WSMsgType.CLOSE, 1003)
    assert await recorder.wait() == [1003]


async def test_invalid_json_closes_1007(make_client: ClientFactory) -> None:
    """Invalid JSON on a json route closes the connection with 1007."""
    recorder = Recorder()
    routes = WebSocketRoutes()
    routes.add_websocket_route("/json", recording_endpoint(recorder, "json"))
    client = await make_client(app_with(routes))
    async with client.ws_connect("/json") as ws:
        await ws.send_str("{not json")
        message = await ws.receive()
    assert (message.type, message.data) == (WSMsgType.CLOSE, 1007)
    assert await recorder.wait() == [1007]


async def test_message_over_max_msg_size_closes_1009(make_client: ClientFactory) -> None:
    """A message over max_msg_size closes with 1009, and on_disconnect reports 1009."""
    recorder = Recorder()
    routes = WebSocketRoutes()
    routes.add_websocket_route("/small", recording_endpoint(recorder), max_msg_size=1024)
    client = await make_client(app_with(routes))
    async with client.ws_connect("/small") as ws:
        await ws.send_bytes(b"x" * 1025)
        message = await ws.receive()
    assert (message.type, message.data) == (WSMsgType.CLOSE, 1009)
    assert await recorder.wait() == [1009]


async def test_default_max_msg_size_is_one_mebibyte(make_client: ClientFactory) -> None:
    """By default a message just under 1 MiB passes and one over it closes with 1009."""
    # aiohttp <= 3.14.5 refuses an uncompressed frame of exactly max_msg_size bytes too.
    limit = aioendpoints.DEFAULT_MAX_MESSAGE_SIZE
    routes = WebSocketRoutes()
    routes.add_websocket_route("/echo", recording_endpoint(Recorder(), "bytes"))
    client = await make_client(app_with(routes))
    async with client.ws_connect("/echo", max_msg_size=0) as ws:
        await ws.send_bytes(b"x" * (limit - 1))
        assert len(await ws.receive_bytes()) == limit - 1
        await ws.send_bytes(b"x" * (limit + 1))
        message = await ws.receive()
    assert (message.type, message.data) == (WSMsgType.CLOSE, 1009)


async def test_view_error_closes_1011_and_logs_one_traceback(
    make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """An exception after accept closes with 1011 and logs its traceback exactly once."""
    routes = WebSocketRoutes()

    @routes.websocket_route("/boom")
    async def boom(ws: WebSocket) -> None:
        await ws.accept()
        raise RuntimeError("boom")

    client = await make_client(app_with(routes))
    with caplog.at_level(logging.ERROR, logger="aioendpoints"):
        async with client.ws_connect("/boom") as ws:
            message = await ws.receive()
    assert (message.type, message.data) == (WSMsgType.CLOSE, 1011)
    tracebacks = [record for record in caplog.records if record.exc_info]
    assert len(tracebacks) == 1
    assert "boom" in str(tracebacks[0].exc_info[1])  # type: ignore[index]


async def test_on_receive_error_closes_1011_and_on_disconnect_runs(
    make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """An exception in on_receive closes with 1011 and on_disconnect gets 1011."""
    recorder = Recorder()
    routes = WebSocketRoutes()

    @routes.websocket_route("/fails")
    class Fails(WebSocketEndpoint):
        async def on_receive(self, ws: WebSocket, data: Any) -> None:
            raise ValueError("bad message")

        async def on_disconnect(self, ws: WebSocket, close_code: int) -> None:
            recorder.record(close_code)

    client = await make_client(app_with(routes))
    with caplog.at_level(logging.ERROR, logger="aioendpoints"):
        async with client.ws_connect("/fails") as ws:
            await ws.send_str("hello")
            message = await ws.receive()
    assert (message.type, message.data) == (WSMsgType.CLOSE, 1011)
    assert await recorder.wait() == [1011]
    assert len([record for record in caplog.records if record.exc_info]) == 1


async def test_error_before_accept_is_http_500(
    make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """An exception in on_connect before accept() answers HTTP 500 instead of upgrading."""
    routes = WebSocketRoutes()

    @routes.websocket_route("/early")
    class Early(WebSocketEndpoint):
        async def on_connect(self, ws: WebSocket) -> None:
            raise RuntimeError("no database")

    client = await make_client(app_with(routes))
    with caplog.at_level(logging.ERROR, logger="aioendpoints"):
        response = await client.get(
            "/early",
            headers={
                "Upgrade": "websocket",
                "Connection": "Upgrade",
                "Sec-WebSocket-Version": "13",
                "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
            },
        )
    assert response.status == 500
    assert len([record for record in caplog.records if record.exc_info]) == 1


@pytest.mark.parametrize("code", [1006, 1005, 1015, 999, 1004, 1016, 2999, 5000])
async def test_peer_close_code_that_must_not_be_sent_fails_with_1002(
    make_client: ClientFactory, code: int
) -> None:
    """A peer's close code that must never be sent is answered with 1002, not echoed."""
    recorder = Recorder()
    routes = WebSocketRoutes()
    routes.add_websocket_route("/echo", recording_endpoint(recorder))
    client = await make_client(app_with(routes))
    ws = await client.ws_connect("/echo")
    await ws.close(code=code)
    assert ws.close_code == 1002
    assert await recorder.wait() == [1002]


@pytest.mark.parametrize("code", [1000, 1001, 1008, 3000, 4999])
async def test_peer_close_code_is_echoed(make_client: ClientFactory, code: int) -> None:
    """A valid close code from the peer is echoed and reaches on_disconnect."""
    recorder = Recorder()
    routes = WebSocketRoutes()
    routes.add_websocket_route("/echo", recording_endpoint(recorder))
    client = await make_client(app_with(routes))
    ws = await client.ws_connect("/echo")
    await ws.close(code=code)
    assert ws.close_code == code
    assert await recorder.wait() == [code]


async def test_function_view_sees_the_1002_failure(make_client: ClientFactory) -> None:
    """A function view's receive() raises WebSocketDisconnect(1002) on an invalid close code."""
    seen: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    routes = WebSocketRoutes()

    @routes.websocket_route("/view")
    async def view(ws: WebSocket) -> None:
        await ws.accept()
        try:
            await ws.receive()
        except aioendpoints.WebSocketDisconnect as disconnect:
            seen.set_result(disconnect.code)
            raise

    client = await make_client(app_with(routes))
    ws = await client.ws_connect("/view")
    await ws.close(code=1006)
    assert await asyncio.wait_for(seen, 5) == 1002


async def test_1002_reply_names_the_invalid_code(make_client: ClientFactory) -> None:
    """The 1002 close frame tells the peer which code was invalid."""
    routes = WebSocketRoutes()
    routes.add_websocket_route("/echo", recording_endpoint(Recorder()))
    client = await make_client(app_with(routes))
    ws = await client.ws_connect("/echo", autoclose=False)
    await ws._writer.close(1006, b"")  # A raw close frame, so that we see the reply.
    reply = await ws.receive(timeout=5)
    assert (reply.type, reply.data, reply.extra) == (
        WSMsgType.CLOSE,
        1002,
        "invalid close code 1006",
    )
    await ws.close()


async def test_own_exception_maps_to_its_close_code(
    make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """close_codes maps a user exception to a close code and reason, with no traceback."""

    class RoomFull(Exception):
        pass

    routes = WebSocketRoutes()

    @routes.websocket_route("/room", close_codes={RoomFull: (4003, "room is full")})
    async def room(ws: WebSocket) -> None:
        await ws.accept()
        raise RoomFull

    client = await make_client(app_with(routes))
    with caplog.at_level(logging.DEBUG, logger="aioendpoints"):
        async with client.ws_connect("/room") as ws:
            message = await ws.receive()
    assert (message.type, message.data, message.extra) == (WSMsgType.CLOSE, 4003, "room is full")
    assert not [record for record in caplog.records if record.exc_info]


async def test_mapping_to_1011_keeps_the_traceback(
    make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """An exception mapped to 1011 sends its reason and still logs its traceback once."""
    routes = WebSocketRoutes()

    @routes.websocket_route("/db", close_codes={ConnectionError: (1011, "database down")})
    async def database(ws: WebSocket) -> None:
        await ws.accept()
        raise ConnectionRefusedError("no database")

    client = await make_client(app_with(routes))
    with caplog.at_level(logging.ERROR, logger="aioendpoints"):
        async with client.ws_connect("/db") as ws:
            message = await ws.receive()
    assert (message.type, message.data, message.extra) == (WSMsgType.CLOSE, 1011, "database down")
    assert len([record for record in caplog.records if record.exc_info]) == 1


async def test_mapping_follows_the_exception_class_hierarchy(make_client: ClientFactory) -> None:
    """A subclass of a mapped exception maps to its parent's close code."""
    routes = WebSocketRoutes()

    @routes.websocket_route("/lookup", close_codes={LookupError: 4004})
    class Lookup(WebSocketEndpoint):
        async def on_receive(self, ws: WebSocket, data: Any) -> None:
            raise KeyError(data)

    client = await make_client(app_with(routes))
    async with client.ws_connect("/lookup") as ws:
        await ws.send_str("missing")
        message = await ws.receive()
    assert (message.type, message.data) == (WSMsgType.CLOSE, 4004)


async def test_route_overrides_a_builtin_close_code(make_client: ClientFactory) -> None:
    """Mapping InvalidData overrides the 1007 that invalid JSON gets by default."""
    routes = WebSocketRoutes()
    routes.add_websocket_route(
        "/json",
        recording_endpoint(Recorder(), "json"),
        close_codes={InvalidData: (4400, "send JSON")},
    )
    client = await make_client(app_with(routes))
    async with client.ws_connect("/json") as ws:
        await ws.send_str("{not json")
        message = await ws.receive()
    assert (message.type, message.data, message.extra) == (WSMsgType.CLOSE, 4400, "send JSON")


async def test_mapped_exception_before_accept_is_http_403(make_client: ClientFactory) -> None:
    """A mapped exception raised before accept() refuses the handshake with 403."""

    class NotInvited(Exception):
        pass

    routes = WebSocketRoutes()

    @routes.websocket_route("/party", close_codes={NotInvited: (4003, "not invited")})
    async def party(ws: WebSocket) -> None:
        raise NotInvited

    client = await make_client(app_with(routes))
    with pytest.raises(aioendpoints_handshake_error()) as refused:
        await client.ws_connect("/party")
    assert refused.value.status == 403


def aioendpoints_handshake_error() -> type[Exception]:
    from aiohttp import WSServerHandshakeError

    return WSServerHandshakeError


def test_close_codes_rejects_a_code_that_cannot_be_sent() -> None:
    """A mapping to a code that cannot be sent is refused when the route is declared."""
    with pytest.raises(ValueError, match="close_codes\\[KeyError\\]"):
        check_close_codes({KeyError: 1006})


def test_close_codes_rejects_a_key_that_is_not_an_exception() -> None:
    """A mapping key that is not an exception class is refused at registration."""
    routes = WebSocketRoutes()

    async def view(ws: WebSocket) -> None:
        await ws.accept()

    with pytest.raises(TypeError, match="exception classes"):
        routes.add_websocket_route("/x", view, close_codes={"oops": 4000})  # type: ignore[dict-item]


def test_peer_close_reply_answers_an_empty_close_with_1000() -> None:
    """A close frame without a code is answered with 1000."""
    assert peer_close_reply(0) == 1000
