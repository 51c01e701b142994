"""The chat demo as a server process, started as the README says, on a free loopback port."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.redis_server import free_port

ROOT = Path(__file__).resolve().parent.parent

__all__ = ["ChatServer", "free_port", "server_errors"]


class ChatServer:
    """The demo, run as a subprocess with ``python -m aiohttp.web`` on a fixed port.

    ``redis_url`` goes into ``CHAT_REDIS_URL``, so that processes share rooms through it.
    """

    def __init__(self, port: int, log_path: Path, redis_url: str | None = None) -> None:
        self.port = port
        self.redis_url = redis_url
        self.url = f"http://127.0.0.1:{port}/"
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        command = [sys.executable, "-m", "aiohttp.web", "-H", "127.0.0.1", "-P", str(self.port)]
        env = {key: value for key, value in os.environ.items() if key != "CHAT_REDIS_URL"}
        if self.redis_url is not None:
            env["CHAT_REDIS_URL"] = self.redis_url
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [*command, "examples.chat:init_app"], cwd=ROOT, env=env, stdout=log, stderr=log
            )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                pytest.fail(f"the demo exited with {self._process.returncode}:\n{self.log()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
            except OSError:
                time.sleep(0.05)
            else:
                return
        pytest.fail(f"the demo did not listen on port {self.port} within 15 s:\n{self.log()}")

    def stop(self) -> None:
        """Stop the server as Ctrl+C would, and wait for it to exit."""
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=5)
        self._process = None

    def log(self) -> str:
        """Everything the server printed."""
        return self.log_path.read_text(errors="replace")


def server_errors(log: str) -> list[str]:
    """Log records at ERROR or above, and tracebacks outside DEBUG records.

    ``python -m aiohttp.web`` logs at DEBUG, and asyncio's debug mode (on under
    PYTHONDEVMODE) logs a browser's connection reset as a DEBUG record with a traceback:
    that is not a server error.
    """
    problems = []
    level = ""
    for line in log.splitlines():
        record = re.match(r"(DEBUG|INFO|WARNING|ERROR|CRITICAL):", line)
        if record:
            level = record[1]
            if level in ("ERROR", "CRITICAL"):
                problems.append(line)
        elif line.startswith("Traceback") and level != "DEBUG":
            problems.append(line)
    return problems
