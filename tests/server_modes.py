"""The two ways the suite serves an application, and what the logs of an ending may hold.

* ``"production"``: :class:`ProductionServer`, a ``web.AppRunner`` with aiohttp's defaults
  and a ``web.TCPSite`` on 127.0.0.1, as ``web.run_app``, ``python -m aiohttp.web`` and
  gunicorn's worker run an app. aiohttp does *not* cancel a handler whose peer went away.
* ``"test-server"``: pytest-aiohttp's ``TestServer``, which cancels the handler's task
  as soon as its peer goes away (``handler_cancellation=True``).

The ``each_mode_server`` and ``each_mode_client`` fixtures (tests/conftest.py) work like
pytest-aiohttp's ``aiohttp_server`` and ``aiohttp_client`` and run the test once per mode.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from yarl import URL

__all__ = [
    "PRODUCTION",
    "SERVER_MODES",
    "TEST_SERVER",
    "ProductionServer",
    "assert_one_traceback",
    "assert_quiet_ending",
]

PRODUCTION = "production"
TEST_SERVER = "test-server"
SERVER_MODES = (PRODUCTION, TEST_SERVER)


class ProductionServer(TestServer):
    """An app served as in production: ``web.AppRunner`` defaults and a ``web.TCPSite``.

    A :class:`~aiohttp.test_utils.TestServer` in every other respect, so that
    ``aiohttp_client`` and the raw-socket helpers take it as they take the test server.
    """

    async def start_server(self, loop: Any = None, **kwargs: Any) -> None:
        """Start the runner and a TCP site on a free loopback port."""
        if self.runner is not None:
            return
        runner = web.AppRunner(self.app, **kwargs)
        self.runner = runner
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port or 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        self.scheme = "http"
        self._root = URL(f"http://{self.host}:{self.port}")


def loud_records(records: Sequence[logging.LogRecord]) -> list[logging.LogRecord]:
    """The records that an ordinary ending must not write: WARNING and up, or a traceback."""
    return [record for record in records if record.levelno >= logging.WARNING or record.exc_info]


def assert_quiet_ending(caplog: pytest.LogCaptureFixture) -> None:
    """Check that the log holds nothing at WARNING or above and no traceback at all."""
    loud = loud_records(caplog.records)
    assert not loud, "an ordinary ending was logged: " + "; ".join(
        f"{record.levelname} {record.name}: {record.getMessage()}" for record in loud
    )


def assert_one_traceback(caplog: pytest.LogCaptureFixture) -> logging.LogRecord:
    """Check that the log holds exactly one traceback, at ERROR, and nothing else loud.

    Returns that record, for the test to check what it names.
    """
    loud = loud_records(caplog.records)
    with_traceback = [record for record in loud if record.exc_info]
    described = "; ".join(
        f"{record.levelname} {record.name}: {record.getMessage()}" for record in loud
    )
    assert len(with_traceback) == 1, f"expected one traceback, got: {described or 'nothing'}"
    assert len(loud) == 1, f"expected nothing else loud, got: {described}"
    assert with_traceback[0].levelno == logging.ERROR
    return with_traceback[0]
