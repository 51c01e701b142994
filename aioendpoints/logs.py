"""Connection-scoped logs: the connection's id and route on each record written while serving it.

While a connection is served, a context variable holds it; tasks started from the view
inherit it. :class:`ConnectionLogFilter` copies its id (:attr:`WebSocket.id`) and its route's
path pattern onto log records as ``connection_id`` and ``route``. aioendpoints' own loggers
carry the filter; add it to your handler to get the same on your records::

    handler = logging.StreamHandler()
    handler.addFilter(aioendpoints.ConnectionLogFilter())
    handler.setFormatter(logging.Formatter("%(connection_id)s %(route)s %(message)s"))
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .websocket import WebSocket

__all__ = ["LOGGER_NAMES", "ConnectionLogFilter", "connection_context", "current_connection"]

#: The connection being served, in its task and the tasks it starts; set by the handler
#: serving it. The connection itself rather than a tuple of its id and route: nothing more
#: to keep per connection.
connection_context: ContextVar[WebSocket | None] = ContextVar(
    "aioendpoints_connection", default=None
)

#: aioendpoints' loggers, each carrying a :class:`ConnectionLogFilter`.
LOGGER_NAMES = (
    "aioendpoints",
    "aioendpoints.admin",
    "aioendpoints.auth",
    "aioendpoints.broadcast",
)


def current_connection() -> tuple[str, str] | None:
    """The id and route pattern of the connection this code serves, or ``None``."""
    current = connection_context.get()
    return None if current is None else (current.id, current.route)


class ConnectionLogFilter(logging.Filter):
    """Adds ``connection_id`` and ``route`` to each record; ``"-"`` outside a connection.

    It never drops a record. Attach it to a handler (for every record that handler
    writes) or to a logger (for that logger's own records).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Set the record's ``connection_id`` and ``route``; keep the record."""
        current = connection_context.get()
        if current is None:
            record.connection_id = record.route = "-"
        else:
            record.connection_id, record.route = current.id, current.route
        return True


_FILTER = ConnectionLogFilter()
for _name in LOGGER_NAMES:
    logging.getLogger(_name).addFilter(_FILTER)
