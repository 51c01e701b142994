"""Keeping credentials out of the access log.

aiohttp's access log writes each request's first line (``%r``), query string included, so
a token passed as ``?access_token=...`` would land in every log file. For aioendpoints
routes whose check reads the query (:class:`~aioendpoints.auth.QueryToken`), admission
marks the request with the parameters to hide, and :class:`RedactingAccessLogger` logs
``access_token=REDACTED`` instead of the value. Install it on the runner::

    runner = web.AppRunner(app, access_log_class=RedactingAccessLogger)
    web.run_app(app, access_log_class=RedactingAccessLogger)

A logger of your own (a custom :class:`aiohttp.abc.AbstractAccessLogger`) logs
:func:`redacted_path_qs` instead of ``request.path_qs``.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Final

from aiohttp import web
from aiohttp.web_log import AccessLogger

from ..request_keys import request_key

__all__ = ["REDACTED", "REDACTED_QUERY_KEY", "RedactingAccessLogger", "redacted_path_qs"]

#: What a redacted value becomes.
REDACTED: Final = "REDACTED"
#: The request's key for the query parameters whose values must not be logged.
REDACTED_QUERY_KEY: Final = request_key("aioendpoints.redacted_query")


def redacted_path_qs(request: web.BaseRequest) -> str:
    """``request.path_qs`` with the values of credential parameters replaced by REDACTED."""
    names: Collection[str] = request.get(REDACTED_QUERY_KEY, ())
    if not names or not any(name in request.query for name in names):
        return request.path_qs
    query = [(name, REDACTED if name in names else value) for name, value in request.query.items()]
    return str(request.rel_url.with_query(query))


class RedactingAccessLogger(AccessLogger):
    """aiohttp's access logger, with the credentials of aioendpoints routes redacted.

    Every format of :class:`aiohttp.web_log.AccessLogger` works: only the request line
    (``%r``) shows the query, and it shows the redacted one.
    """

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        """Log the request, its credential parameters redacted."""
        path_qs = redacted_path_qs(request)
        if path_qs != request.path_qs:
            request = request.clone(rel_url=path_qs)
        super().log(request, response, time)
