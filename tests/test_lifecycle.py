"""Lifecycle guarantees: how a view's ending becomes a close code or an HTTP answer."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from aiohttp import WSMsgType, web

import aioendpoints
from aioendpoints import (
    CloseCode,
    WebSocket,
    WebSocketClose,
    WebSocketDisconnect,
    WebSocketEndpoint,
    WebSocketRoutes,
)
from tests.conftest import ModeClient

from .helpers import eventually, make_app

UPGRADE_HEADERS = {
    "Upgrade": "websocket",
    "Connection": "Upgrade",
    "Sec-WebSocket-Version": "13",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
}


async def test_view_returning_without_close_closes_1000(each_mode_client: ModeClient) -> None:
    """A view that returns without closing gets a close with 1000."""
    routes = WebSocketRoutes()

    @routes.websocket_route("/")
    async def view(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send("done")

    client = await each_mode_client(make_app(routes))
    async with client.ws_connect("/") as ws:
        assert await ws.receive_str(timeout=5) == "done"
        message = await ws.receive(timeout=5)
        assert (message.type, message.data) == (WSMsgType.CLOSE, CloseCode.NORMAL_CLOSURE)


async def test_view_error_after_accept_closes_1011_and_logs_once(
    each_mode_client: ModeClient, caplog: pytest.LogCaptureFixture
) -> None:
    """An exception after accept closes with 1011 and logs its traceback once."""
    routes = WebSocketRoutes()

    @routes.websocket_route("/")
    async def view(ws: WebSocket) -> None:
        await ws.accept()
        await ws.receive()
        raise RuntimeError("view bug")

    client = await each_mode_client(make_app(routes))
    with caplog.at_level(logging.DEBUG, logger="aioendpoints"):
        async with client.ws_connect("/") as ws:
            await ws.send_str("trigger")
            message = await ws.receive(timeout=5)
    assert (message.type, message.data) == (WSMsgType.CLOSE, CloseCode.INTERNAL_ERROR)
    tracebacks = [record for record in caplog.records if record.exc_info]
    assert len(tracebacks) == 1
    assert "view bug" in str(tracebacks[0].exc_info[1])  # type: ignore[index]
    assert "view" in tracebacks[0].getMessage()


async def test_other_connections_survive_a_view_error(each_mode_client: ModeClient) -> None:
    """One view's exception leaves the other connections untouched."""
    routes = WebSocketRoutes()

    @routes.websocket_route("/")
    async def view(ws: WebSocket) -> None:
        await ws.accept()
        async for message in ws:
            if message == "crash":
                raise RuntimeError("only this one")
            await ws.send(message)

    client = await each_mode_client(make_app(routes))
    async with client.ws_connect("/") as healthy, client.ws_connect("/") as doomed:
        await doomed.send_str("crash")
        assert (await doomed.receive(timeout=5)).data == 1011
        await healthy.send_str("still here")
        assert await healthy.receive_str(timeout=5) == "still here"


async def test_view_error_before_accept_is_http_500(each_mode_client: ModeClient) -> None:
    """An exception before accept answers HTTP 500 instead of upgrading."""
    routes = WebSocketRoutes()

    @routes.websocket_route("/")
    async def view(ws: WebSocket) -> None:
        raise ValueError("before accept")

    client = await each_mode_client(make_app(routes))
    response = await client.get("/", headers=UPGRADE_HEADERS)
    assert response.status == 500


async def test_view_that_never_accepts_is_http_403(each_mode_client: ModeClient) -> None:
    """A view that returns or closes without accepting refuses the handshake with 403."""
    routes = WebSocketRoutes()

    @routes.websocket_route("/")
    async def view(ws: WebSocket) -> None:
        await ws.close()

    client = await each_mode_client(make_app(routes))
    response = await client.get("/", headers=UPGRADE_HEADERS)
    assert response.status == 403


async def test_reject_answers_the_given_http_error(each_mode_client: ModeClient) -> None:
    """ws.reject(status, reason, headers) answers that HTTP error instead of upgrading."""
    routes = WebSocketRoutes()

    @routes.websocket_route("/")
    async def view(ws: WebSocket) -> None:
        if "Authorization" not in ws.headers:
            ws.reject(401, "token required", {"WWW-Authenticate": "Bearer"})
        await ws.accept()

    client = await each_mode_client(make_app(routes))
    response = await client.get("/", headers=UPGRADE_HEADERS)
    assert response.status == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert await response.text() == "token required"


async def test_http_exception_in_on_connect_is_the_answer(each_mode_client: ModeClient) -> None:
    """Raising aiohttp's HTTPForbidden in on_connect before accept answers 403."""
    routes = WebSocketRoutes()

    @routes.websocket_route("/")
    class Private(WebSocketEndpoint):
        async def on_connect(self, ws: WebSocket) -> None:
            raise web.HTTPForbidden(text="members only")

    client = await each_mode_client(make_app(routes))
    response = await client.get("/", headers=UPGRADE_HEADERS)
    assert response.status == 403
    assert await response.text() == "members only"


async def test_websocket_close_exception_closes_with_its_code(
    each_mode_client: ModeClient, caplog: pytest.LogCaptureFixture
) -> None:
    """Raising WebSocketClose(code, reason) closes with them, without a traceback."""
    routes = WebSocketRoutes()

    @routes.websocket_route("/")
    async def view(ws: WebSocket) -> None:
        await ws.accept()
        raise WebSocketClose(4403, "not allowed in this room")

    client = await each_mode_client(make_app(routes))
    with caplog.at_level(logging.DEBUG, logger="aioendpoints"):
        async with client.ws_connect("/") as ws:
            message = await ws.receive(timeout=5)
    assert (message.data, message.extra) == (4403, "not allowed in this room")
    assert not [record for record in caplog.records if record.exc_info]


async def test_uncaught_disconnect_code_is_logged_as_a_warning(
    each_mode_client: ModeClient, caplog: pytest.LogCaptureFixture
) -> None:
    """A disconnect outside caught_close_codes ending a view is logged; 1000 is silent."""
    routes = WebSocketRoutes()

    @routes.websocket_route("/")
    async def view(ws: WebSocket) -> None:
        await ws.accept()
        await ws.receive()

    client = await each_mode_client(make_app(routes))
    with caplog.at_level(logging.WARNING, logger="aioendpoints"):
        async with client.ws_connect("/") as ws:
            await ws.close(code=1000)
        async with client.ws_connect("/") as ws:
            await ws.close(code=4000)
        await eventually(lambda: len(caplog.records) == 1)
    assert "4000" in caplog.records[0].getMessage()
    assert caplog.records[0].levelno == logging.WARNING


async def test_caught_close_codes_all_silences_every_code(
    each_mode_client: ModeClient, caplog: pytest.LogCaptureFixture
) -> None:
    """caught_close_codes="all" makes every disconnect a normal ending."""
    routes = WebSocketRoutes()
    ended: list[int | None] = []

    @routes.websocket_route("/", caught_close_codes="all")
    async def view(ws: WebSocket) -> None:
        await ws.accept()
        async for _ in ws:
            pass
        ended.append(ws.close_code)

    client = await each_mode_client(make_app(routes))
    with caplog.at_level(logging.WARNING, logger="aioendpoints"):
        async with client.ws_connect("/") as ws:
            await ws.close(code=4999)
        await eventually(lambda: ended == [4999])
    assert caplog.records == []


async def test_cancelled_view_reports_1006_and_stays_cancelled(
    each_mode_client: ModeClient,
) -> None:
    """A cancelled handler task reports 1006 to on_disconnect and still ends cancelled."""
    routes = WebSocketRoutes()
    disconnects: list[int] = []
    started = asyncio.Event()

    @routes.websocket_route("/")
    class Waiting(WebSocketEndpoint):
        async def on_connect(self, ws: WebSocket) -> None:
            await ws.accept()
            started.set()

        async def on_disconnect(self, ws: WebSocket, close_code: int) -> None:
            disconnects.append(close_code)

    app = make_app(routes)
    client = await each_mode_client(app)
    async with client.ws_connect("/") as ws:
        await asyncio.wait_for(started.wait(), 5)
        registry = app[aioendpoints.CONNECTIONS_KEY]
        (task,) = registry._connections.values()
        assert task is not None
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 5)
        message = await ws.receive(timeout=5)
        assert message.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.ERROR)
    assert disconnects == [CloseCode.ABNORMAL_CLOSURE]


async def test_on_disconnect_sees_the_servers_own_close_code(
    each_mode_client: ModeClient,
) -> None:
    """When the endpoint closes first, on_disconnect gets the code it closed with."""
    routes = WebSocketRoutes()
    disconnects: list[int] = []

    @routes.websocket_route("/")
    class Kicker(WebSocketEndpoint):
        async def on_receive(self, ws: WebSocket, data: Any) -> None:
            await ws.close(4008, "kicked")

        async def on_disconnect(self, ws: WebSocket, close_code: int) -> None:
            disconnects.append(close_code)

    client = await each_mode_client(make_app(routes))
    async with client.ws_connect("/") as ws:
        await ws.send_str("anything")
        assert (await ws.receive(timeout=5)).data == 4008
    await eventually(lambda: disconnects == [4008])


async def test_disconnect_in_view_is_reported_once(each_mode_client: ModeClient) -> None:
    """A view that swallows WebSocketDisconnect still ends cleanly, with no second close."""
    routes = WebSocketRoutes()
    codes: list[int] = []

    @routes.websocket_route("/")
    async def view(ws: WebSocket) -> None:
        await ws.accept()
        try:
            while True:
                await ws.receive()
        except WebSocketDisconnect as disconnect:
            codes.append(disconnect.code)

    client = await each_mode_client(make_app(routes))
    async with client.ws_connect("/") as ws:
        await ws.close(code=1001)
    await eventually(lambda: codes == [1001])


async def test_on_disconnect_finishes_even_if_the_task_is_cancelled_again(
    each_mode_client: ModeClient,
) -> None:
    """A second cancellation while on_disconnect awaits does not cut the hook short."""
    routes = WebSocketRoutes()
    hook_started = asyncio.Event()
    finished: list[int] = []
    started = asyncio.Event()

    @routes.websocket_route("/")
    class SlowGoodbye(WebSocketEndpoint):
        async def on_connect(self, ws: WebSocket) -> None:
            await ws.accept()
            started.set()

        async def on_disconnect(self, ws: WebSocket, close_code: int) -> None:
            hook_started.set()
            await asyncio.sleep(0.2)
            finished.append(close_code)

    app = make_app(routes)
    client = await each_mode_client(app)
    async with client.ws_connect("/"):
        await asyncio.wait_for(started.wait(), 5)
        (task,) = app[aioendpoints.CONNECTIONS_KEY]._connections.values()
        assert task is not None
        task.cancel()
        await asyncio.wait_for(hook_started.wait(), 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 5)
    await eventually(lambda: finished == [CloseCode.ABNORMAL_CLOSURE])
