"""Connection-scoped logs: each record carries the connection's id and route."""

from __future__ import annotations

import asyncio
import importlib
import logging
import pkgutil
from typing import Any

import aiohttp
import pytest
from aiohttp import web

import aioendpoints
from aioendpoints import ConnectionLogFilter, WebSocket, WebSocketRoutes

from .helpers import eventually, make_app

user_logger = logging.getLogger("tests.user_view")


def chat_routes(ids: list[str]) -> WebSocketRoutes:
    """A view that logs with the user's own logger, in its task and in a task it starts."""
    routes = WebSocketRoutes()

    @routes.websocket_route("/rooms/{room}", caught_close_codes="all")
    async def room(ws: WebSocket, room: str) -> None:
        await ws.accept()
        ids.append(ws.id)
        user_logger.info("joined %s", room)

        async def later() -> None:
            user_logger.info("from a task of the view")

        await asyncio.ensure_future(later())
        async for text in ws:
            await ws.send(text)

    return routes


async def test_ids_are_short_and_unique(aiohttp_client: Any) -> None:
    """Each connection gets its own short id, shown in its repr."""
    ids: list[str] = []
    client = await aiohttp_client(make_app(chat_routes(ids)))
    sockets = [await client.ws_connect(f"/rooms/r{n}") for n in range(20)]
    await eventually(lambda: len(ids) == 20)
    assert len(set(ids)) == 20
    assert all(0 < len(id_) <= 8 and id_.isalnum() for id_ in ids)
    for ws in sockets:
        await ws.close()


async def test_the_users_records_carry_the_connection_through_the_filter(
    aiohttp_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """With ConnectionLogFilter on a handler, a view's records (and its tasks') carry both."""
    caplog.handler.addFilter(ConnectionLogFilter())
    caplog.set_level(logging.INFO, "tests.user_view")
    ids: list[str] = []
    client = await aiohttp_client(make_app(chat_routes(ids)))
    ws = await client.ws_connect("/rooms/kitchen")
    await eventually(lambda: len(caplog.records) == 2)
    assert [(r.getMessage(), r.connection_id, r.route) for r in caplog.records] == [  # type: ignore[attr-defined]
        ("joined kitchen", ids[0], "/rooms/{room}"),
        ("from a task of the view", ids[0], "/rooms/{room}"),
    ]
    await ws.close()


def test_records_outside_a_connection_get_dashes() -> None:
    """Outside a connection the filter sets "-", so a format naming the fields never fails."""
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", None, None)
    assert ConnectionLogFilter().filter(record)
    assert (record.connection_id, record.route) == ("-", "-")  # type: ignore[attr-defined]


async def test_aioendpoints_records_carry_the_connection(caplog: pytest.LogCaptureFixture) -> None:
    """aioendpoints' own records (opened, closed) carry the id and route with no set-up."""
    caplog.set_level(logging.DEBUG, "aioendpoints")
    ids: list[str] = []
    app = make_app(chat_routes(ids))
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/rooms/hall"
        async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
            await ws.send_str("hi")
            assert await ws.receive_str(timeout=5) == "hi"
        await eventually(lambda: not app[aioendpoints.CONNECTIONS_KEY])
        await eventually(lambda: any("closed" in r.getMessage() for r in caplog.records))
    finally:
        await runner.cleanup()
    ours = [r for r in caplog.records if r.name.startswith("aioendpoints")]
    assert [r.getMessage().split()[1] for r in ours] == ["/rooms/hall", "closed"]
    assert {(r.connection_id, r.route) for r in ours} == {(ids[0], "/rooms/{room}")}  # type: ignore[attr-defined]
    assert all(r.levelno == logging.DEBUG for r in ours)


def test_every_aioendpoints_logger_carries_the_filter() -> None:
    """Each logger the package creates adds the connection to its records."""
    for module in pkgutil.walk_packages(aioendpoints.__path__, "aioendpoints."):
        importlib.import_module(module.name)
    names = [name for name in logging.root.manager.loggerDict if name.startswith("aioendpoints")]
    assert names
    for name in names:
        logger = logging.getLogger(name)
        assert any(isinstance(f, ConnectionLogFilter) for f in logger.filters), name
