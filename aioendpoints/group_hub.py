"""The interface between connections and the groups feature.

The core knows groups only through this: :meth:`WebSocket.join
<aioendpoints.WebSocket.join>`, ``leave()`` and ``publish()``, an endpoint's declared
``groups`` and the view runner look up a :class:`GroupHub` under :data:`GROUP_HUB_KEY`,
which :mod:`aioendpoints.broadcast` registers on the application. The core imports nothing
of the feature.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeAlias, TypeVar

from aiohttp import web

if TYPE_CHECKING:
    from msgspec import Struct
    from pydantic import BaseModel

__all__ = ["GROUP_HUB_KEY", "GroupHub", "Message", "check_group_name", "check_group_names"]

#: What can be published: ``dict``/``list`` (sent as JSON text), a typed message (a msgspec
#: Struct or pydantic model, encoded with its class as JSON text), ``str`` (text), or bytes.
Message: TypeAlias = (
    "dict[str, Any] | list[Any] | Struct | BaseModel | str | bytes | bytearray | memoryview"
)


Connection = TypeVar("Connection", contravariant=True)


class GroupHub(Protocol[Connection]):
    """What the core needs of the groups feature (:class:`aioendpoints.broadcast.Broadcast`)."""

    async def join(
        self,
        websocket: Connection,
        group: str,
        /,
        *,
        since: Any = None,
        presence: Any = None,
        presence_events: bool = False,
    ) -> Any:
        """Add ``websocket`` to ``group``; ``since``: where to resume, for groups with
        history; ``presence``: what the member shows to others; ``presence_events``: whether
        it hears of others joining and leaving."""

    async def leave(self, websocket: Connection, group: str, /) -> None:
        """Remove ``websocket`` from ``group``."""

    async def publish(
        self, group: str, message: Any, /, *, exclude: Connection | None, publisher: Connection
    ) -> Any:
        """Send ``message`` to every member of ``group``, on behalf of ``publisher``."""

    def leave_all(self, websocket: Connection, /) -> None:
        """Remove a connection that has ended from all its groups."""

    def groups_of(self, websocket: Connection, /) -> tuple[str, ...]:
        """The groups ``websocket`` has joined."""


#: The application's :class:`GroupHub`; :func:`aioendpoints.setup` registers one.
GROUP_HUB_KEY: Final[web.AppKey[GroupHub[Any]]] = web.AppKey("aioendpoints.group_hub")


def check_group_name(group: object) -> str:
    """Return ``group`` if it is a group name (a non-empty ``str``), else raise ``TypeError``."""
    if not isinstance(group, str) or not group:
        raise TypeError(f"a group name must be a non-empty str, got {group!r}")
    return group


def check_group_names(groups: object, owner: str) -> list[str]:
    """Return ``groups`` as a list if it is one of group names, else raise naming ``owner``."""
    if isinstance(groups, str | bytes) or not isinstance(groups, Iterable):
        raise TypeError(
            f"{owner}.groups must be a list of group names or a method returning one, "
            f"got {groups!r}"
        )
    return [check_group_name(group) for group in groups]
