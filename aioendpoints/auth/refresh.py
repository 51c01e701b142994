"""Expiry and refresh: a credential that expires does not keep a connection open.

When the principal has an ``expires_at``, the server sends, ``refresh_ahead`` seconds
before then (at once if less time is left), one JSON text frame, whatever the route's
value type::

    {"aioendpoints": "refresh", "expires_at": 1767225600.0}

The client answers with a new credential, in a JSON text frame that starts with the
``"aioendpoints"`` key (``JSON.stringify`` keeps the order)::

    {"aioendpoints": "refresh", "token": "<new credential>"}

The route's ``authenticate`` check runs again on a copy of the handshake request that
carries the new credential (every token source of :mod:`aioendpoints.auth.tokens` reads
it, and so does ``Authorization: Bearer``). If it passes, for the same principal, the
server answers ``{"aioendpoints": "refreshed", "expires_at": ...}`` and
:attr:`WebSocket.principal` is the new one. The view never sees these messages.

Without an accepted refresh by ``expires_at + refresh_grace``, the connection is closed
with **4401** "Credential expired". A refresh that the check refuses closes it at once:
**4401** for a bad credential, **4403** for a refused principal or another principal's,
and 4000 plus the status of any other HTTP error the check raises (``HTTPTooManyRequests``:
4429).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

from aiohttp import WSMessage, WSMsgType, hdrs, web

from ..exceptions import WebSocketDisconnect
from ..request_keys import PRINCIPAL_KEY
from ..websocket import ReceiveFilter, WebSocket
from .principal import (
    REFRESH_TOKEN_KEY,
    Authenticate,
    AuthenticationFailed,
    PermissionDenied,
    call_check,
    expiry_of,
    user_id_of,
)

__all__ = [
    "CREDENTIAL_EXPIRED",
    "CREDENTIAL_REFUSED",
    "DEFAULT_REFRESH_AHEAD",
    "DEFAULT_REFRESH_GRACE",
    "PRINCIPAL_REFUSED",
    "refresh_filter",
]

logger = logging.getLogger("aioendpoints.auth")

#: Seconds before expiry that the server asks for a new credential.
DEFAULT_REFRESH_AHEAD = 30.0
#: Seconds after expiry that a refresh is still accepted.
DEFAULT_REFRESH_GRACE = 10.0

#: The close code and reason when no refresh came in time.
CREDENTIAL_EXPIRED: Final = (4401, "Credential expired")
#: The close code when a refresh's credential is missing, malformed or refused (401-like).
CREDENTIAL_REFUSED: Final = 4401
#: The close code when a refresh names a refused principal, or another one (403-like).
PRINCIPAL_REFUSED: Final = 4403

_MARKER: Final = '{"aioendpoints"'
_Receive = Callable[[], Awaitable[WSMessage]]


def refresh_filter(authenticate: Authenticate) -> ReceiveFilter:
    """The receive filter that asks for, and takes, new credentials for ``authenticate``.

    ``authenticate`` may set ``refresh_ahead`` and ``refresh_grace`` attributes
    (:class:`~aioendpoints.auth.TokenAuth` does); else the defaults apply.
    """
    ahead = float(getattr(authenticate, "refresh_ahead", DEFAULT_REFRESH_AHEAD))
    grace = float(getattr(authenticate, "refresh_grace", DEFAULT_REFRESH_GRACE))

    def install(websocket: WebSocket, receive: _Receive) -> _Receive:
        return _Refresher(websocket, receive, authenticate, ahead, grace).receive

    return install


class _Refresher:
    """One connection's expiry: the timers, and the refresh messages taken out of its stream."""

    __slots__ = ("_ahead", "_authenticate", "_grace", "_inner", "_timers", "_websocket")

    def __init__(
        self,
        websocket: WebSocket,
        inner: _Receive,
        authenticate: Authenticate,
        ahead: float,
        grace: float,
    ) -> None:
        self._websocket = websocket
        self._inner = inner
        self._authenticate = authenticate
        self._ahead = ahead
        self._grace = grace
        self._timers: tuple[asyncio.TimerHandle, ...] = ()
        self._schedule(expiry_of(websocket.principal))
        task = asyncio.current_task()
        if task is not None:
            # The timers go when the connection's handler ends, not an hour later.
            task.add_done_callback(lambda _: self._cancel())

    def _cancel(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers = ()

    def _schedule(self, expires_at: float | None) -> None:
        self._cancel()
        if expires_at is None:
            return
        loop = asyncio.get_running_loop()
        left = expires_at - time.time()
        self._timers = (
            loop.call_later(max(left - self._ahead, 0.0), self._ask, expires_at),
            loop.call_later(max(left + self._grace, 0.0), self._expire),
        )

    def _ask(self, expires_at: float) -> None:
        if not self._websocket.closed:
            _in_background(self._send({"aioendpoints": "refresh", "expires_at": expires_at}))

    def _expire(self) -> None:
        if not self._websocket.closed:
            logger.debug("Closing %r: credential expired", self._websocket)
            _in_background(self._close(*CREDENTIAL_EXPIRED))

    async def _send(self, message: dict[str, Any]) -> None:
        # The connection may have ended meanwhile: then there is nothing to refresh.
        with contextlib.suppress(WebSocketDisconnect, ConnectionError):
            await self._websocket.send_text(json.dumps(message))

    async def _close(self, code: int, reason: str) -> None:
        # On a timeout aiohttp drops the transport: the connection is over either way.
        with contextlib.suppress(TimeoutError, ConnectionError):
            await self._websocket.close(code, reason)

    async def receive(self) -> WSMessage:
        """The next message for the view; refresh messages are handled here instead."""
        while True:
            message = await self._inner()
            if message.type is WSMsgType.TEXT and message.data.startswith(_MARKER):
                token = _refresh_token(message.data)
                if token is not None:
                    await self._refresh(token)
                    continue
            return message

    async def _refresh(self, token: str) -> None:
        websocket = self._websocket
        request = websocket.request
        headers = request.headers.copy()
        headers[hdrs.AUTHORIZATION] = f"Bearer {token}"
        with_new_credential = request.clone(headers=headers)
        with_new_credential[REFRESH_TOKEN_KEY] = token
        try:
            principal = await call_check(self._authenticate, with_new_credential)
            known = user_id_of(websocket.principal)
            if known is not None and user_id_of(principal) != known:
                raise PermissionDenied("Credential of another principal")
        except AuthenticationFailed as failure:
            await self._refuse(CREDENTIAL_REFUSED, failure.reason)
        except PermissionDenied as denial:
            await self._refuse(PRINCIPAL_REFUSED, denial.reason)
        except web.HTTPException as refusal:
            # What the check would have answered the handshake with, as a 4xxx close code.
            await self._refuse(4000 + refusal.status, refusal.text or refusal.reason)
        request[PRINCIPAL_KEY] = principal
        expires_at = expiry_of(principal)
        self._schedule(expires_at)
        await self._send({"aioendpoints": "refreshed", "expires_at": expires_at})

    async def _refuse(self, code: int, reason: str) -> None:
        logger.debug("Closing %r: refresh refused: %s", self._websocket, reason)
        await self._close(code, reason)
        raise WebSocketDisconnect(code, reason)


def _refresh_token(data: str) -> str | None:
    """The credential of a refresh message, or ``None`` if ``data`` is not one."""
    try:
        message = json.loads(data)
    except ValueError:
        return None
    if not isinstance(message, dict) or message.get("aioendpoints") != "refresh":
        return None
    token = message.get("token")
    # A refresh without a usable token is still a refresh: refused by the check, not
    # handed to the view.
    return token if isinstance(token, str) else ""


# Strong references to the sends and closes that the timers start.
_background: set[asyncio.Task[None]] = set()


def _in_background(work: Any) -> None:
    task: asyncio.Task[None] = asyncio.ensure_future(work)
    _background.add(task)
    task.add_done_callback(_background.discard)
