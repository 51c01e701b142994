"""The browser side: a small ES module that reconnects and resumes, and its server half.

:func:`aioendpoints.setup` serves ``aioendpoints/static/client.js`` at ``client_path``
(``/aioendpoints/client.js`` by default). The module keeps the last position of each
group with history and sends them back in the ``resume`` query parameter when it
reconnects; :func:`resume` joins a group from there and tells the module whether nothing
was lost.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .history import Position, Recovery

if TYPE_CHECKING:
    from ..websocket import WebSocket

__all__ = ["DEFAULT_CLIENT_PATH", "resume"]

#: Where :func:`aioendpoints.setup` serves the browser module unless told otherwise.
DEFAULT_CLIENT_PATH = "/aioendpoints/client.js"
CLIENT_SCRIPT = Path(__file__).resolve().parent.parent / "static" / "client.js"


def install_client(app: web.Application, path: str) -> None:
    """Serve the browser module at ``path``."""
    if not isinstance(path, str) or not path.startswith("/"):
        raise ValueError(f"client_path must be a path starting with '/', got {path!r}")

    async def client_script(request: web.Request) -> web.FileResponse:
        return web.FileResponse(CLIENT_SCRIPT, headers={"Content-Type": "text/javascript"})

    app.router.add_get(path, client_script)


def resume_positions(websocket: WebSocket) -> dict[str, Position]:
    """The positions the browser module sent, by group; malformed ones left out."""
    text = websocket.query_params.get("resume")
    if not text:
        return {}
    try:
        sent = json.loads(text)
    except ValueError:
        return {}
    positions = {}
    if isinstance(sent, dict):
        for group, position in sent.items():
            try:
                positions[group] = Position.parse(position)
            except (TypeError, ValueError):
                continue
    return positions


async def resume(websocket: WebSocket, group: str, **options: Any) -> Recovery | None:
    """Join ``group`` from the position the browser module kept, and tell it the outcome.

    The module sent its last position of each group with history when it reconnected;
    the member gets every message after it, then the live ones, and the module gets
    ``{"group": group, "resumed": true|false, "position": "<epoch>:<offset>"}`` (``false``:
    some messages are lost, reload). Without a kept position it is a plain ``join()``.
    ``options`` go to :meth:`WebSocket.join <aioendpoints.WebSocket.join>`.
    """
    since = resume_positions(websocket).get(group)
    recovery: Recovery | None = await websocket.join(group, since=since, **options)
    if recovery is not None and since is not None:
        report = {"group": group, "resumed": recovery.recovered, "position": str(recovery.position)}
        await websocket.send_text(json.dumps(report))
    return recovery
