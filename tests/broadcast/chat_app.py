"""The app the broadcast tests serve: a chat endpoint driven by JSON commands.

Each client gets ``{"pid": ...}`` on connect, then sends ``{"join": group}`` (with
``"since": position`` for a group with history, answered with ``recovered`` and
``position`` too),
``{"leave": group}`` (answered with ``{"joined": group}``/``{"left": group}``) or
``{"publish": message, "group": group, "exclude_self": bool}``. HTTP routes publish
from outside any connection and report this process's members.

Served in-process by the tests, and as ``tests.broadcast.chat_app:init_app`` by
``python -m aiohttp.web`` and gunicorn, with the backend URL in
``AIOENDPOINTS_TEST_BROADCAST``.
"""

from __future__ import annotations

import os
from typing import Any

from aiohttp import web

import aioendpoints
from aioendpoints import WebSocket, WebSocketEndpoint, WebSocketRoutes

BROADCAST_ENV = "AIOENDPOINTS_TEST_BROADCAST"
#: ``size,ttl`` of the history every group keeps; unset for none.
HISTORY_ENV = "AIOENDPOINTS_TEST_HISTORY"
#: Seconds before the presence of a dead process is gone, for a Redis backend.
PRESENCE_TTL_ENV = "AIOENDPOINTS_TEST_PRESENCE_TTL"

routes = WebSocketRoutes()
http_routes = web.RouteTableDef()


@routes.websocket_route("/chat")
class Chat(WebSocketEndpoint):
    encoding = "json"

    async def on_connect(self, ws: WebSocket) -> None:
        await ws.accept()
        await ws.send({"pid": os.getpid()})

    async def on_receive(self, ws: WebSocket, data: Any) -> None:
        if "join" in data:
            recovery = await ws.join(
                data["join"],
                since=data.get("since"),
                presence=data.get("presence"),
                presence_events=data.get("presence_events", False),
            )
            if recovery is None:
                await ws.send({"joined": data["join"]})
            else:
                await ws.send(
                    {
                        "joined": data["join"],
                        "recovered": recovery.recovered,
                        "position": str(recovery.position),
                    }
                )
        elif "leave" in data:
            await ws.leave(data["leave"])
            await ws.send({"left": data["leave"]})
        elif "publish" in data:
            await ws.publish(
                data["group"], data["publish"], exclude=ws if data.get("exclude_self") else None
            )


@routes.websocket_route("/resume/{group}")
async def resuming(ws: WebSocket, group: str) -> None:
    """A member for the browser module: resumes ``group`` from the position it kept."""
    await ws.accept()
    await aioendpoints.resume(ws, group)
    async for _ in ws:
        pass


#: A page that shows a group's messages through the browser module.
PAGE = """<!doctype html><title>resume</title><ul id="log"></ul><p id="status"></p>
<script type="module">
import { ResumingSocket } from "/aioendpoints/client.js";
const group = decodeURIComponent(location.hash.slice(1));
const options = {minDelay: 100, maxDelay: 1000};
const socket = new ResumingSocket("/resume/" + encodeURIComponent(group), options);
socket.addEventListener("message", (event) => {
  const item = document.createElement("li");
  item.textContent = JSON.stringify(event.detail.data);
  document.querySelector("#log").append(item);
});
socket.addEventListener("resume", (event) => {
  document.querySelector("#status").textContent =
    event.detail.recovered ? "resumed" : "history lost";
});
socket.addEventListener("open", () => document.body.dataset.open = "yes");
socket.addEventListener("close", () => document.body.dataset.open = "no");
socket.connect();
</script>"""


@http_routes.get("/page")
async def page(request: web.Request) -> web.Response:
    """The page of PAGE; the group is in the URL's fragment."""
    return web.Response(text=PAGE, content_type="text/html")


@http_routes.post("/publish/{group}")
async def publish(request: web.Request) -> web.Response:
    """Publish the JSON body; ``?count=N`` publishes ``{"seq": i}`` for i in 0..N-1."""
    group = request.match_info["group"]
    if "count" in request.query:
        for seq in range(int(request.query["count"])):
            await aioendpoints.publish(request.app, group, {"seq": seq})
    else:
        await aioendpoints.publish(request.app, group, await request.json())
    return web.Response(status=204)


@http_routes.get("/members/{group}")
async def members(request: web.Request) -> web.Response:
    """How many members the group has in this process."""
    group = request.match_info["group"]
    return web.json_response(len(aioendpoints.group_members(request.app, group)))


def make_app(
    broadcast: str | aioendpoints.Broadcast, history: aioendpoints.History | None = None
) -> web.Application:
    """The chat app over the given broadcast backend, its groups keeping ``history``."""
    app = web.Application()
    aioendpoints.setup(app, broadcast=broadcast, history=history)
    app.add_routes(routes)
    app.add_routes(http_routes)
    return app


def init_app(argv: list[str] | None = None) -> web.Application:
    """For ``python -m aiohttp.web``: the backend URL comes from the environment."""
    broadcast: str | aioendpoints.Broadcast = os.environ[BROADCAST_ENV]
    if os.environ.get(PRESENCE_TTL_ENV):
        from aioendpoints.broadcast.redis import RedisBackend

        ttl = float(os.environ[PRESENCE_TTL_ENV])
        broadcast = aioendpoints.Broadcast(RedisBackend(str(broadcast), presence_ttl=ttl))
        return make_app(broadcast)
    history = os.environ.get(HISTORY_ENV)
    if history:
        size, ttl = history.split(",")
        return make_app(os.environ[BROADCAST_ENV], aioendpoints.History(int(size), float(ttl)))
    return make_app(os.environ[BROADCAST_ENV])


async def gunicorn_app() -> web.Application:
    """For gunicorn's ``aiohttp.GunicornWebWorker``, one app per worker."""
    return init_app()
