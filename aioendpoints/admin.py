"""The admin API: look at this process's connections, reach a user's in every process.

:func:`connections` lists the open connections of this process. :func:`send_to_user` and
:func:`disconnect` act on every connection tagged with a user (``ws.user = "alice"``) in every
process that shares the application's broadcast backend: this process acts on its own
connections, and the others hear of it on a channel of the backend reserved for this.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final

from aiohttp import web

from .broadcast.frames import BINARY, TEXT, Message, encode_message
from .broadcast.groups import BROADCAST_KEY, Broadcast
from .close_codes import CloseCode, is_sendable_close_code
from .exceptions import WebSocketDisconnect
from .registry import CONNECTIONS_KEY, ConnectionRegistry
from .serialization import default_dumps
from .websocket import WebSocket

__all__ = ["ADMIN_CHANNEL", "ConnectionInfo", "connections", "disconnect", "send_to_user"]

logger = logging.getLogger("aioendpoints.admin")

#: The backend channel on which processes tell each other what to do with a user's
#: connections. It is a group name no application should use: its messages never go to
#: members.
ADMIN_CHANNEL: Final = "\x00aioendpoints.admin"


@dataclass(frozen=True, slots=True)
class ConnectionInfo:
    """A snapshot of one open connection."""

    #: The connection's :attr:`WebSocket.id`.
    id: str
    #: The path pattern of its route.
    route: str
    #: The path it connected to.
    path: str
    #: The peer's ``host:port``, if known.
    peer: str | None
    #: Its :attr:`WebSocket.user`.
    user: str | None
    #: The groups it has joined.
    groups: tuple[str, ...]
    #: When it was accepted, in seconds since the epoch.
    opened_at: float
    #: Messages and payload bytes in each direction; ``None`` unless metrics are on
    #: (only then are messages counted).
    messages_received: int | None
    bytes_received: int | None
    messages_sent: int | None
    bytes_sent: int | None
    #: Bytes written but not yet sent to the peer.
    send_buffer: int

    def as_dict(self) -> dict[str, Any]:
        """The snapshot as a JSON-ready dict."""
        return {name: getattr(self, name) for name in self.__slots__}


def connections(app: web.Application) -> list[ConnectionInfo]:
    """Snapshots of the open connections of this process, oldest first."""
    infos = []
    for websocket in _connections_of(app):
        peer = websocket.client
        transport = websocket.request.transport
        counts = websocket.message_counts
        opened_at = websocket.opened_at
        assert opened_at is not None  # registered by accept()
        infos.append(
            ConnectionInfo(
                id=websocket.id,
                route=websocket.route,
                path=websocket.request.path,
                peer=f"{peer.host}:{peer.port}" if peer is not None else None,
                user=websocket.user,
                groups=websocket.groups,
                opened_at=opened_at,
                messages_received=counts.messages_received if counts is not None else None,
                bytes_received=counts.bytes_received if counts is not None else None,
                messages_sent=counts.messages_sent if counts is not None else None,
                bytes_sent=counts.bytes_sent if counts is not None else None,
                send_buffer=transport.get_write_buffer_size() if transport is not None else 0,
            )
        )
    return infos


async def send_to_user(app: web.Application, user: str, message: Message) -> int:
    """Send ``message`` to every connection of ``user``, in every process.

    ``dict``/``list`` go as JSON text, ``str`` as text, bytes as binary, as with
    :func:`aioendpoints.publish`. Returns how many connections of this process got it;
    the other processes deliver to theirs when the backend brings them the message.
    Raises :class:`~aioendpoints.BroadcastUnavailable` when the backend cannot take it.
    """
    _check_user(user)
    opcode, payload = encode_message(message, default_dumps)
    await _announce(app, {"do": "send", "user": user, "opcode": opcode}, payload)
    return await _send_locally(_connections_of(app), user, opcode, payload)


async def disconnect(
    app: web.Application,
    *,
    user: str,
    code: int = CloseCode.POLICY_VIOLATION,
    reason: str = "",
) -> int:
    """Close every connection of ``user`` with ``code`` and ``reason``, in every process.

    Returns how many connections of this process were closed.
    """
    _check_user(user)
    if not is_sendable_close_code(code):
        raise ValueError(f"close code {code!r} cannot be sent in a close frame")
    await _announce(app, {"do": "disconnect", "user": user, "code": code, "reason": reason}, b"")
    return await _disconnect_locally(_connections_of(app), user, code, reason)


def _connections_of(app: web.Application) -> ConnectionRegistry:
    registry = app.get(CONNECTIONS_KEY)
    if registry is None:
        raise RuntimeError(f"{app!r} has no registry: call aioendpoints.setup(app) first")
    return registry


def _check_user(user: object) -> None:
    if not isinstance(user, str) or not user:
        raise TypeError(f"user must be a non-empty str, got {user!r}")


def _of_user(registry: ConnectionRegistry, user: str) -> list[WebSocket]:
    return [ws for ws in registry if ws.user == user and not ws.closed]


async def _send_locally(
    registry: ConnectionRegistry, user: str, opcode: int, payload: bytes
) -> int:
    if opcode == TEXT:
        text = payload.decode()
        sends = [ws.send_text(text) for ws in _of_user(registry, user)]
    else:
        sends = [ws.send_bytes(payload) for ws in _of_user(registry, user)]
    return await _count_successes(sends)


async def _disconnect_locally(
    registry: ConnectionRegistry, user: str, code: int, reason: str
) -> int:
    return await _count_successes([ws.close(code, reason) for ws in _of_user(registry, user)])


async def _count_successes(actions: Iterable[Awaitable[None]]) -> int:
    """Run ``actions`` together; count those that did not find their connection gone."""
    results = await asyncio.gather(*actions, return_exceptions=True)
    reached = 0
    for result in results:
        if result is None:
            reached += 1
        elif not isinstance(result, WebSocketDisconnect | ConnectionError | TimeoutError):
            logger.error("Error acting on a user's connection", exc_info=result)
    return reached


# Between processes ---------------------------------------------------------------------


async def _announce(app: web.Application, command: dict[str, Any], payload: bytes) -> None:
    """Tell the other processes, through the broadcast backend; nothing to do in one process."""
    hub = app.get(BROADCAST_KEY)
    if hub is None or not hub.backend.distributed:
        return
    header = json.dumps(command, separators=(",", ":")).encode()
    await hub.backend.publish(ADMIN_CHANNEL, BINARY, header + b"\n" + payload)


def _on_command(
    registry: ConnectionRegistry, tasks: set[asyncio.Task[int]]
) -> Callable[[int, bytes], None]:
    def receive(opcode: int, data: bytes) -> None:
        header, _, payload = data.partition(b"\n")
        try:
            command = json.loads(header)
            user = command["user"]
            if command["do"] == "send":
                action = _send_locally(registry, user, int(command["opcode"]), payload)
            else:
                action = _disconnect_locally(
                    registry, user, int(command["code"]), str(command["reason"])
                )
        except (ValueError, KeyError, TypeError):
            logger.error("Ignoring a malformed admin command: %r", data[:200])
            return
        task = asyncio.ensure_future(action)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    return receive


def install_admin(app: web.Application, hub: Broadcast) -> None:
    """Have this process act on the other processes' admin commands while ``app`` runs."""
    tasks: set[asyncio.Task[int]] = set()

    async def listening(app: web.Application) -> AsyncIterator[None]:
        await hub.listen(ADMIN_CHANNEL, _on_command(app[CONNECTIONS_KEY], tasks))
        yield
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    app.cleanup_ctx.append(listening)
