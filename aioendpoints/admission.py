"""Admission: the checks a handshake passes before the view runs (origin, credentials, caps)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from .auth.check import AUTH_KEY, AuthSettings
from .observers import OBSERVER_KEY
from .options import RouteOptions
from .origins import ALLOWED_ORIGINS_KEY, SAME_ORIGIN_ONLY

__all__ = ["admitting"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def admitting(handler: Handler, options: RouteOptions) -> Handler:
    """Wrap ``handler`` so that refused handshakes get HTTP 401, 403 or 503 before the view."""
    route_origins = options.allowed_origins
    route_auth = AuthSettings.checked(options.authenticate, options.group_permission)
    counter = options.counter()

    async def admit(request: web.Request) -> web.StreamResponse:
        config = request.config_dict
        # One try block here rather than a wrapping coroutine: nothing more per connection.
        try:
            auth = config.get(AUTH_KEY)
            if route_auth is not None:
                auth = route_auth.over(auth)
            if auth is not None:
                auth.mark(request)
            origins = route_origins or config.get(ALLOWED_ORIGINS_KEY, SAME_ORIGIN_ONLY)
            refusal = origins.refusal(request)
            if refusal is not None:
                raise web.HTTPForbidden(text=refusal)
            if auth is not None:
                await auth.admit(request)
            if counter is None:
                return await handler(request)
            client = request.remote
            counter.admit(client)
            try:
                return await handler(request)
            finally:
                counter.release(client)
        except web.HTTPException as refused:
            # Once the handshake is accepted, the handler answers everything with a close
            # frame: an HTTP error that gets here refused the handshake.
            observer = config.get(OBSERVER_KEY)
            if observer is not None:
                observer.refused(request, refused.status)
            raise

    admit.__name__ = handler.__name__
    admit.__qualname__ = handler.__qualname__
    admit.__doc__ = handler.__doc__
    return admit
