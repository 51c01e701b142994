"""Nothing secret in logs: a query-string token never reaches the access log or ours."""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from aiohttp.web_log import AccessLogger

from aioendpoints.auth import RedactingAccessLogger, redacted_path_qs
from aioendpoints.auth.access_log import REDACTED_QUERY_KEY
from tests.auth_app import TOKEN, token_app
from tests.broadcast.processes import serve
from tests.helpers import eventually
from tests.redis_server import free_port

FORGED = "f0rged-token-value"


@asynccontextmanager
async def serving(access_log_class: type[AccessLogger]) -> AsyncIterator[str]:
    """The app under a real AppRunner, its access log on the ``test.access`` logger."""
    runner = web.AppRunner(
        token_app(),
        access_log=logging.getLogger("test.access"),
        access_log_class=access_log_class,
    )
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def connect_twice(base: str) -> None:
    """One connection with the real token, one refused for a forged one."""
    async with aiohttp.ClientSession() as session:
        url = f"{base}/ws?room=lobby&access_token={TOKEN}"
        async with session.ws_connect(url) as ws:
            assert await ws.receive_str() == "hello alice"
        with pytest.raises(aiohttp.WSServerHandshakeError) as refusal:
            await session.ws_connect(f"{base}/ws?access_token={FORGED}&room=lobby")
        assert refusal.value.status == 401


def access_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == "test.access"]


async def test_query_token_is_redacted_from_the_access_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The access log shows access_token=REDACTED, the other parameters, and no token."""
    caplog.set_level(logging.DEBUG)
    async with serving(RedactingAccessLogger) as base:
        await connect_twice(base)
        await eventually(lambda: len(access_lines(caplog)) == 2)
    lines = access_lines(caplog)
    assert '"GET /ws?room=lobby&access_token=REDACTED HTTP/1.1" 101' in lines[0]
    assert '"GET /ws?access_token=REDACTED&room=lobby HTTP/1.1" 401' in lines[1]
    for secret in (TOKEN, FORGED):
        assert secret not in caplog.text
        assert all(secret not in repr(record.__dict__) for record in caplog.records)


async def test_aiohttps_own_access_logger_would_log_the_token(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The control: aiohttp's logger writes the token, which is why the redacting one exists."""
    caplog.set_level(logging.INFO, logger="test.access")
    async with serving(AccessLogger) as base:
        await connect_twice(base)
        await eventually(lambda: len(access_lines(caplog)) == 2)
    assert TOKEN in access_lines(caplog)[0]


async def test_other_routes_are_logged_as_they_are(caplog: pytest.LogCaptureFixture) -> None:
    """Routes that read no token from the query keep their query in the access log."""
    caplog.set_level(logging.INFO, logger="test.access")
    runner = web.AppRunner(
        make_plain_app(),
        access_log=logging.getLogger("test.access"),
        access_log_class=RedactingAccessLogger,
    )
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        base = f"http://127.0.0.1:{runner.addresses[0][1]}"
        async with aiohttp.ClientSession() as session:
            await (await session.get(f"{base}/page?access_token=visible")).read()
        await eventually(lambda: len(access_lines(caplog)) == 1)
    finally:
        await runner.cleanup()
    assert "GET /page?access_token=visible" in access_lines(caplog)[0]


def make_plain_app() -> web.Application:
    async def page(request: web.Request) -> web.Response:
        return web.Response(text="page")

    app = web.Application()
    app.router.add_get("/page", page)
    return app


def test_redacted_path_qs_for_custom_access_loggers() -> None:
    """redacted_path_qs() hides every value of a marked parameter and keeps the rest."""
    request = make_mocked_request("GET", "/ws?access_token=a&x=1&access_token=b")
    assert redacted_path_qs(request) == request.path_qs  # not marked: not an auth route
    request[REDACTED_QUERY_KEY] = ("access_token",)
    assert redacted_path_qs(request) == "/ws?access_token=REDACTED&x=1&access_token=REDACTED"


async def test_gunicorn_with_the_documented_runner_redacts_the_token(tmp_path: Path) -> None:
    """gunicorn serving the how-to's runner factory writes access_token=REDACTED to its file."""
    access_log = tmp_path / "access.log"
    port = free_port()
    command = [
        sys.executable, "-m", "gunicorn", "tests.auth_app:gunicorn_runner",
        "--bind", f"127.0.0.1:{port}", "--worker-class", "aiohttp.GunicornWebWorker",
        "--access-logfile", str(access_log), "--graceful-timeout", "5",
    ]  # fmt: skip
    async with serve(command, "memory://", port) as base:
        await connect_twice(base)
        await eventually(
            lambda: access_log.is_file() and len(access_log.read_text().splitlines()) == 2,
            within=15,
        )
    lines = logged_lines(access_log)
    assert '"GET /ws?room=lobby&access_token=REDACTED HTTP/1.1" 101' in lines[0]
    assert '"GET /ws?access_token=REDACTED&room=lobby HTTP/1.1" 401' in lines[1]
    assert TOKEN not in access_log.read_text()
    assert FORGED not in access_log.read_text()


def logged_lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.is_file() else []
