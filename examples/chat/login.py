"""Logging in to the chat: the name comes from a signed cookie, not from what a page sends.

``POST /login`` with a ``name`` field checks the name and sets the ``chat_login`` cookie:
the name signed with itsdangerous, ``HttpOnly`` and ``SameSite=Strict``. The rooms'
WebSocket route authenticates with that cookie before the upgrade (HTTP 401 without a
valid one); with the origin check on, no other site's page can ride it.

The signing key is ``CHAT_SECRET`` when set (processes that share rooms may share it too),
else a random key per process: a restarted server forgets its logins, and the page logs
in again before each connection.
"""

from __future__ import annotations

import os
import secrets
from typing import Final

import itsdangerous
from aiohttp import web

from aioendpoints.auth import CookieToken
from aioendpoints.origins import SAME_ORIGIN_ONLY

from .messages import InvalidMessage, check_name

__all__ = [
    "COOKIE",
    "LOGIN_MAX_AGE",
    "SECRET_ENV",
    "SIGNER_KEY",
    "authenticate",
    "log_in",
    "signer",
]

#: The environment variable with the key that signs login cookies.
SECRET_ENV: Final = "CHAT_SECRET"
#: The login cookie's name.
COOKIE: Final = "chat_login"
#: Seconds a login stays valid.
LOGIN_MAX_AGE: Final = 24 * 3600
#: The application's cookie signer.
SIGNER_KEY: Final = web.AppKey("chat.signer", itsdangerous.URLSafeTimedSerializer)


def signer() -> itsdangerous.URLSafeTimedSerializer:
    """A signer for login cookies, keyed by ``CHAT_SECRET`` or a random key."""
    key = os.environ.get(SECRET_ENV) or secrets.token_urlsafe(32)
    return itsdangerous.URLSafeTimedSerializer(key, salt="chat-login")


async def log_in(request: web.Request) -> web.Response:
    """``POST /login``: check the name and set the signed login cookie; 400 for a bad name.

    Another site's page may not log its visitors in under a name of its choosing: the
    same origin check as the WebSocket routes' answers it with 403.
    """
    refusal = SAME_ORIGIN_ONLY.refusal(request)
    if refusal is not None:
        raise web.HTTPForbidden(text=refusal)
    form = await request.post()
    try:
        name = check_name(str(form.get("name", "")))
    except InvalidMessage as problem:
        raise web.HTTPBadRequest(text=str(problem)) from None
    response = web.json_response({"name": name})
    response.set_cookie(
        COOKIE,
        request.app[SIGNER_KEY].dumps(name),
        max_age=LOGIN_MAX_AGE,
        httponly=True,
        samesite="Strict",
        secure=request.secure,
    )
    return response


def authenticate(request: web.Request) -> str | None:
    """The rooms' check before the upgrade: the name in a valid login cookie, else 401."""
    cookie = _LOGIN_COOKIE(request)
    if cookie is None:
        return None
    try:
        name = request.config_dict[SIGNER_KEY].loads(cookie, max_age=LOGIN_MAX_AGE)
    except itsdangerous.BadData:
        return None  # forged, tampered with, signed by another key, or too old
    return str(name)


_LOGIN_COOKIE = CookieToken(COOKIE)
