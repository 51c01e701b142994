"""An optional, read-only admin page: this process's connections and groups, live.

Off by default. ``aioendpoints.setup(app, admin_path="/admin", admin_check=check)`` serves
an HTML page at ``admin_path`` (no CDN, nothing loaded from elsewhere) that lists the open
connections and the groups, refreshed over a WebSocket at ``admin_path + "/ws"`` served by
aioendpoints itself. ``check(request)`` (sync or async) decides who may see either; a
request it refuses gets HTTP 403.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Awaitable, Callable
from importlib.resources import files
from typing import Any

from aiohttp import web

from .admin import connections
from .broadcast.groups import BROADCAST_KEY
from .handlers import websocket_handler
from .websocket import WebSocket

__all__ = ["AdminCheck", "install_admin_page", "snapshot"]

#: Says whether a request may see the admin page: a function of the request returning a
#: bool, or an awaitable of one.
AdminCheck = Callable[[web.Request], bool | Awaitable[bool]]

#: Seconds between two snapshots sent to an open admin page.
DEFAULT_ADMIN_INTERVAL = 1.0

# Everything is inline and the page talks only to its own origin.
_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'unsafe-inline'; "
    "style-src 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}


def snapshot(app: web.Application) -> dict[str, Any]:
    """What the admin page shows: the connections, and the members of each group here."""
    hub = app.get(BROADCAST_KEY)
    groups = {} if hub is None else {name: len(hub.members(name)) for name in sorted(hub.groups)}
    return {"connections": [info.as_dict() for info in connections(app)], "groups": groups}


def install_admin_page(
    app: web.Application,
    path: str,
    check: AdminCheck | None,
    *,
    interval: float = DEFAULT_ADMIN_INTERVAL,
) -> None:
    """Serve the admin page at ``path`` and its live feed at ``path + "/ws"``, behind ``check``."""
    if not isinstance(path, str) or not path.startswith("/"):
        raise ValueError(f"admin_path must be a path starting with '/', got {path!r}")
    if not callable(check):
        raise TypeError(
            "admin_path needs admin_check: a function of the request that returns whether "
            f"it may see the admin page, got {check!r}"
        )
    html = (files("aioendpoints") / "static" / "admin.html").read_text(encoding="utf-8")

    allowed_by = check

    async def admin_page(request: web.Request) -> web.Response:
        """The admin page, for requests that ``check`` allows."""
        if not await _allowed(allowed_by, request):
            raise web.HTTPForbidden(text="not allowed")
        return web.Response(text=html, content_type="text/html", headers=_SECURITY_HEADERS)

    async def admin_feed(ws: WebSocket) -> None:
        """A snapshot every ``interval`` seconds, until the page goes away."""
        if not await _allowed(allowed_by, ws.request):
            ws.reject(403, "not allowed")
        await ws.accept()
        while True:
            await ws.send(snapshot(app))
            # The page sends nothing: this waits out the interval, or ends with its close.
            with contextlib.suppress(TimeoutError):
                await ws.receive(timeout=interval)

    app.router.add_get(path, admin_page)
    feed = websocket_handler(admin_feed, value_type="json", caught_close_codes="all")
    app.router.add_get(path.rstrip("/") + "/ws", feed)


async def _allowed(check: AdminCheck, request: web.Request) -> bool:
    allowed = check(request)
    if inspect.isawaitable(allowed):
        allowed = await allowed
    return allowed is True
