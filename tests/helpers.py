"""Small helpers shared by the core tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from aiohttp import web

import aioendpoints
from aioendpoints import WebSocketRoutes


def make_app(routes: WebSocketRoutes | None = None, *, setup: bool = True) -> web.Application:
    """An application serving ``routes``, with ``aioendpoints.setup()`` unless told otherwise."""
    app = web.Application()
    if setup:
        aioendpoints.setup(app)
    if routes is not None:
        app.add_routes(routes)
    return app


async def eventually(check: Callable[[], Any], within: float = 5.0) -> None:
    """Wait until ``check()`` is truthy; fail after ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not check():
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {within} s: {check}")
        await asyncio.sleep(0.01)
