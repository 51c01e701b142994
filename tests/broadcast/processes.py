"""Server processes for the multi-process tests: ``python -m aiohttp.web`` and gunicorn."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from tests.redis_server import free_port

from .chat_app import BROADCAST_ENV, HISTORY_ENV, PRESENCE_TTL_ENV

ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT = 30.0


async def wait_for_port(port: int, process: subprocess.Popen[bytes]) -> None:
    """Wait until ``port`` accepts connections; fail if the process exits first."""
    for _ in range(int(STARTUP_TIMEOUT / 0.05)):
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before listening")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        await writer.wait_closed()
        return
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {STARTUP_TIMEOUT} s")


@asynccontextmanager
async def serve(
    command: list[str],
    broadcast_url: str,
    port: int,
    *,
    history: str = "",
    presence_ttl: str = "",
) -> AsyncIterator[str]:
    """Run ``command`` with the chat app's backend URL (and ``size,ttl`` history) set;
    yield its base URL."""
    env = {
        **os.environ,
        BROADCAST_ENV: broadcast_url,
        HISTORY_ENV: history,
        PRESENCE_TTL_ENV: presence_ttl,
        "PYTHONPATH": str(ROOT),
    }
    process = subprocess.Popen(command, cwd=ROOT, env=env)  # noqa: ASYNC220 - a server that outlives this call
    try:
        await wait_for_port(port, process)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            await asyncio.to_thread(process.wait, 15)
        except subprocess.TimeoutExpired:
            process.kill()
            await asyncio.to_thread(process.wait, 5)


def aiohttp_web(port: int) -> list[str]:
    """``python -m aiohttp.web`` serving the chat app on ``port``."""
    return [
        sys.executable, "-m", "aiohttp.web", "-H", "127.0.0.1", "-P", str(port),
        "tests.broadcast.chat_app:init_app",
    ]  # fmt: skip


def gunicorn(port: int, workers: int) -> list[str]:
    """gunicorn with aiohttp's worker serving the chat app on ``port``."""
    return [
        sys.executable, "-m", "gunicorn", "tests.broadcast.chat_app:gunicorn_app",
        "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
        "--worker-class", "aiohttp.GunicornWebWorker", "--graceful-timeout", "5",
        "--log-level", "warning",
    ]  # fmt: skip


__all__ = ["aiohttp_web", "free_port", "gunicorn", "serve"]
