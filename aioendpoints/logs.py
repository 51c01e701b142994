"""Connection-scoped logs: the connection's id and route on each record written while serving it.

While a connection is served, a context variable holds its id (:attr:`WebSocket.id`) and its
route's path pattern; tasks started from the view inherit it. :class:`ConnectionLogFilter`
copies them onto log records as ``connection_id`` and ``route``. aioendpoints' own loggers
carry the filter; add it to your handler to get the same on your records::

    handler = logging.StreamHandler()
    handler.addFilter(aioendpoints.ConnectionLogFilter())
    handler.setFormatter(logging.Formatter("%(connection_id)s %(route)s %(message)s"))
"""

from __future__ import annotations

import logging
from contextvars import ContextVar

__all__ = ["LOGGER_NAMES", "ConnectionLogFilter", "connection_context", "current_connection"]

#: The id and route pattern of the connection being served, in its task and the tasks it
#: starts; set by the handler serving it.
connection_context: ContextVar[tuple[str, str] | None] = ContextVar(
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
    return connection_context.get()


class ConnectionLogFilter(logging.Filter):
    """Adds ``connection_id`` and ``route`` to each record; ``"-"`` outside a connection.

    It never drops a record. Attach it to a handler (for every record that handler
    writes) or to a logger (for that logger's own records).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Set the record's ``connection_id`` and ``route``; keep the record."""
        current = connection_context.get()
        record.connection_id, record.route = current if current is not None else ("-", "-")
        return True


_FILTER = ConnectionLogFilter()
for _name in LOGGER_NAMES:
    logging.getLogger(_name).addFilter(_FILTER)
