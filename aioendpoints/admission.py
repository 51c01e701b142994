"""Admission: the checks a handshake passes before the view runs (origin, credentials, caps)."""

from __future__ import annotations

from aiohttp import web

from .auth.check import AUTH_KEY, AuthSettings
from .options import RouteOptions
from .origins import ALLOWED_ORIGINS_KEY, SAME_ORIGIN_ONLY
from .request_keys import app_values

__all__ = ["Admission"]


class Admission:
    """One route's handshake checks: origin, credentials and connection caps.

    :meth:`admit` runs before the view and raises the HTTP refusal; :meth:`release` undoes
    what an admitted connection counted, once it ends. Neither stays on the stack while a
    connection is open.
    """

    __slots__ = ("_auth", "_counter", "_origins")

    def __init__(self, options: RouteOptions) -> None:
        self._origins = options.allowed_origins
        self._auth = AuthSettings.checked(options.authenticate, options.group_permission)
        self._counter = options.counter()

    async def admit(self, request: web.Request) -> None:
        """Refuse ``request`` with HTTP 401, 403 or 503, or count it in."""
        value_of = app_values(request)
        auth = value_of(AUTH_KEY)
        if self._auth is not None:
            auth = self._auth.over(auth)
        if auth is not None:
            auth.mark(request)
        origins = self._origins or value_of(ALLOWED_ORIGINS_KEY) or SAME_ORIGIN_ONLY
        refusal = origins.refusal(request)
        if refusal is not None:
            raise web.HTTPForbidden(text=refusal)
        if auth is not None:
            await auth.admit(request)
        if self._counter is not None:
            self._counter.admit(request.remote)

    def release(self, request: web.Request) -> None:
        """Forget an admitted connection that has ended."""
        if self._counter is not None:
            self._counter.release(request.remote)
