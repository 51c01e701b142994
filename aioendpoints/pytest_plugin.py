"""The pytest plugin of :mod:`aioendpoints.testing`: the ``websocket_connect`` fixture.

pytest loads it through the ``pytest11`` entry point when aioendpoints is installed; with
plugin auto-loading off, add ``pytest_plugins = ["aioendpoints.pytest_plugin"]`` to your
root ``conftest.py``. It needs pytest-aiohttp, for ``aiohttp_client``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from .testing import DEFAULT_TIMEOUT, WebSocketConnect, WebSocketTestClient, connect

__all__ = ["websocket_connect"]


@pytest.fixture
def websocket_connect(
    aiohttp_client: Callable[[web.Application], Awaitable[TestClient[Any, Any]]],
) -> WebSocketConnect:
    """Open WebSockets to an application under test: ``await websocket_connect(app, path)``.

    Pass an :class:`aiohttp.web.Application` (served once per test, however many
    connections you open to it) or a client from pytest-aiohttp's ``aiohttp_client``.
    The server and its connections close when the test ends.
    """
    clients: dict[int, TestClient[Any, Any]] = {}

    async def open_websocket(
        app_or_client: web.Application | TestClient[Any, Any],
        path: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109 - as in connect()
        **ws_connect_options: Any,
    ) -> WebSocketTestClient:
        if isinstance(app_or_client, web.Application):
            # An application can only be started once, so its connections share one server.
            client = clients.get(id(app_or_client))
            if client is None:
                client = clients[id(app_or_client)] = await aiohttp_client(app_or_client)
        else:
            client = app_or_client
        return await connect(client, path, timeout=timeout, **ws_connect_options)

    return open_websocket
