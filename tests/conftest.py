"""Shared fixtures: services, logging and the environment the suite needs."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import signal
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import settings
from pytest_aiohttp import AiohttpClient, AiohttpServer

from tests.redis_server import REDIS_SERVER, RedisServer
from tests.server_modes import PRODUCTION, SERVER_MODES, ProductionServer

if TYPE_CHECKING:
    from playwright.async_api import Browser

#: Set by .ci/run: a test that would skip for want of a service fails instead.
REQUIRE_SERVICES = os.environ.get("AIOENDPOINTS_REQUIRE_SERVICES") == "1"

# In CI the property tests replay the same examples every run, so a landing never depends on
# the luck of the draw; locally they explore new ones each time.
settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.hookimpl(tryfirst=True)
def pytest_timeout_set_timer(item: pytest.Item, settings: Any) -> bool | None:
    """pytest-timeout's signal method, which also prints where each asyncio task waits.

    Its own traceback of a hung async test ends in the event loop's poll, which says
    nothing of the await that never returns; the tasks' stacks do.
    """
    if settings.method != "signal" or threading.current_thread() is not threading.main_thread():
        return None
    import pytest_timeout

    def on_timeout(signum: int, frame: object) -> None:
        __tracebackhide__ = True
        loop = asyncio._get_running_loop()
        for task in asyncio.all_tasks(loop) if loop is not None else ():
            print(f"{task!r} awaits, outermost first:", file=sys.stderr)
            print("".join(_awaits(task.get_coro())), file=sys.stderr)
        pytest_timeout.timeout_sigalrm(item, settings)

    def cancel() -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)

    item.cancel_timeout = cancel  # type: ignore[attr-defined]  # pytest-timeout's cancel hook calls it
    signal.signal(signal.SIGALRM, on_timeout)
    signal.setitimer(signal.ITIMER_REAL, settings.timeout)
    return True


def _awaits(awaitable: Any) -> list[str]:
    """The lines of a coroutine's chain of awaits (Task.print_stack shows the first only)."""
    lines = []
    while awaitable is not None:
        frame = getattr(awaitable, "cr_frame", None) or getattr(awaitable, "gi_frame", None)
        if frame is None:
            lines.append(f"  {awaitable!r}\n")
            break
        code = frame.f_code
        lines.append(f'  File "{code.co_filename}", line {frame.f_lineno}, in {code.co_name}\n')
        awaitable = getattr(awaitable, "cr_await", None) or getattr(awaitable, "gi_yieldfrom", None)
    return lines


def service_missing(reason: str) -> None:
    """Skip the calling test for want of a service, or fail it when CI requires services."""
    if REQUIRE_SERVICES:
        pytest.fail(f"required service missing (AIOENDPOINTS_REQUIRE_SERVICES=1): {reason}")
    pytest.skip(reason)


def require_redis_client() -> None:
    """Call :func:`service_missing` unless redis-py is installed."""
    if importlib.util.find_spec("redis") is None:
        service_missing("the redis package is not installed (pip install 'aioendpoints[redis]')")


def require_redis_server() -> None:
    """Call :func:`service_missing` unless redis-py and redis-server are installed."""
    require_redis_client()
    if not os.access(REDIS_SERVER, os.X_OK):
        service_missing(f"redis-server is not installed ({REDIS_SERVER})")


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The shared Redis: AIOENDPOINTS_REDIS_URL, or a redis-server started for the session."""
    require_redis_client()
    url = os.environ.get("AIOENDPOINTS_REDIS_URL")
    if url:
        yield url
        return
    require_redis_server()
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server.url
    finally:
        server.kill()


#: ``await each_mode_server(app)``: like ``aiohttp_server``, in the test's server mode.
ModeServer = Callable[[web.Application], Awaitable[TestServer]]
#: ``await each_mode_client(app)``: like ``aiohttp_client``, in the test's server mode.
ModeClient = Callable[..., Awaitable[TestClient[web.Request, web.Application]]]


@pytest.fixture(params=SERVER_MODES)
def server_mode(request: pytest.FixtureRequest) -> str:
    """``"production"`` or ``"test-server"``: a test that uses it runs once in each mode.

    See tests/server_modes.py for what the two modes differ in.
    """
    return str(request.param)


@pytest.fixture
async def each_mode_server(
    server_mode: str, aiohttp_server: AiohttpServer
) -> AsyncIterator[ModeServer]:
    """Serve an app on a loopback port, once as in production and once as the test server.

    Keyword arguments go to ``web.AppRunner`` (``keepalive_timeout=...``), in both modes.
    """
    started: list[ProductionServer] = []

    async def serve(app: web.Application, **kwargs: Any) -> TestServer:
        if server_mode != PRODUCTION:
            return await aiohttp_server(app, **kwargs)
        server = ProductionServer(app)
        started.append(server)
        await server.start_server(**kwargs)  # web.AppRunner's keyword arguments
        return server

    yield serve
    for server in started:
        await server.close()


@pytest.fixture
def each_mode_client(each_mode_server: ModeServer, aiohttp_client: AiohttpClient) -> ModeClient:
    """A test client of an app served in the test's server mode (see ``each_mode_server``)."""

    async def connect(
        app: web.Application, **kwargs: Any
    ) -> TestClient[web.Request, web.Application]:
        return await aiohttp_client(await each_mode_server(app), **kwargs)

    return connect


#: Debian's Chromium, never a browser that Playwright downloads.
CHROMIUM = os.environ.get("AIOENDPOINTS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Headless Chromium from the system, driven by Playwright."""
    if not os.access(CHROMIUM, os.X_OK):
        service_missing(f"Chromium not found at {CHROMIUM} (set AIOENDPOINTS_CHROMIUM)")
    try:
        from playwright.async_api import Error, async_playwright
    except ImportError:
        service_missing("the playwright package is not installed (pip install -e '.[test]')")
        raise
    async with async_playwright() as playwright:
        try:
            chromium = await playwright.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_ARGS
            )
        except Error as error:
            service_missing(f"Chromium at {CHROMIUM} did not start: {error}")
            raise
        yield chromium
        await chromium.close()
