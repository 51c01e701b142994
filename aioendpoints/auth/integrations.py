"""Checks built on aiohttp-session and aiohttp-security, for apps that already use them.

Neither library is a dependency of aioendpoints: each is imported when its check first
runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from aiohttp_security import AbstractAuthorizationPolicy

from .principal import Authenticate, AuthenticationFailed, GroupPermission, PermissionDenied

__all__ = ["security_group_permission", "security_identity", "session_identity"]


def session_identity(key: str = "user") -> Authenticate:
    """A check whose principal is ``session[key]`` of aiohttp-session; 401 without it.

    The session cookie is sent by browsers of any site: keep the origin check on.
    """

    async def authenticate(request: web.Request) -> Any:
        from aiohttp_session import get_session

        session = await get_session(request)
        principal = session.get(key)
        if principal is None:
            raise AuthenticationFailed("Log in first", challenge="Session")
        return principal

    authenticate.__qualname__ = f"session_identity({key!r})"
    return authenticate


def security_identity(permission: str | None = None) -> Authenticate:
    """A check through aiohttp-security's policies: the principal is the user id of
    ``authorized_userid()`` (401 without one); with ``permission``, ``permits()`` must
    allow it too (else 403).
    """

    async def authenticate(request: web.Request) -> Any:
        from aiohttp_security import authorized_userid, permits

        user_id = await authorized_userid(request)
        if user_id is None:
            raise AuthenticationFailed("Log in first", challenge="Session")
        if permission is not None and not await permits(request, permission):
            raise PermissionDenied(f"Permission {permission!r} required")
        return user_id

    authenticate.__qualname__ = f"security_identity({permission!r})"
    return authenticate


def security_group_permission(
    policy: AbstractAuthorizationPolicy, permission: str = "group:{group}"
) -> GroupPermission:
    """A ``group_permission`` that asks aiohttp-security's authorization ``policy``.

    The principal may join (and publish to) ``group`` when ``policy.permits(principal,
    permission.format(group=group))`` says so: ``"group:lobby"`` by default.
    """

    async def may(principal: Any, group: str) -> bool:
        return bool(await policy.permits(principal, permission.format(group=group)))

    may.__qualname__ = f"security_group_permission({permission!r})"
    return may
