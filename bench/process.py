"""A server under test in its own process, pinned to one core, with its CPU time and memory."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

__all__ = ["ServerProcess", "cpu_seconds", "rss_bytes"]

REPO_ROOT = Path(__file__).resolve().parent.parent
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of process ``pid``, from /proc/PID/stat."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # The command name may hold spaces; the fields after its closing parenthesis do not.
    fields = stat[stat.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return (utime + stime) / _CLOCK_TICKS


def rss_bytes(pid: int) -> int:
    """The resident set size of process ``pid``, from /proc/PID/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS in /proc/{pid}/status")


class ServerProcess:
    """``python -m bench.servers KIND`` (or another ``module``), under ``taskset`` and a tool.

    ``deployed`` runs an aiohttp kind under ``web.run_app`` instead of a bare ``AppRunner``.

    Use as ``async with ServerProcess(...) as server:``; ``server.port`` is its port.
    """

    def __init__(
        self,
        kind: str,
        cpu: int | None,
        wrapper: tuple[str, ...] = (),
        start_timeout: float = 30.0,
        stop_timeout: float = 30.0,
        env: dict[str, str] | None = None,
        module: str = "bench.servers",
        deployed: bool = False,
        arguments: tuple[str, ...] = (),
    ) -> None:
        self.kind = kind
        self.port = 0
        self._command = [
            *(("taskset", "-c", str(cpu)) if cpu is not None else ()),
            *wrapper,
            sys.executable,
            "-m",
            module,
            kind,
            *arguments,
            *(("--deployed",) if deployed else ()),
        ]
        self._start_timeout = start_timeout
        self._stop_timeout = stop_timeout
        self._env = {**os.environ, **env} if env else None
        self._process: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int:
        """The server's process id (``taskset`` and valgrind run it in their own process)."""
        assert self._process is not None
        return self._process.pid

    def cpu_seconds(self) -> float:
        """The server's CPU time so far."""
        return cpu_seconds(self.pid)

    def rss_bytes(self) -> int:
        """The server's resident memory now."""
        return rss_bytes(self.pid)

    async def __aenter__(self) -> ServerProcess:
        self._process = await asyncio.create_subprocess_exec(
            *self._command,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=REPO_ROOT,
            env=self._env,
        )
        assert self._process.stdout is not None
        try:
            line = await asyncio.wait_for(self._process.stdout.readline(), self._start_timeout)
        except TimeoutError:
            await self.stop()
            raise RuntimeError(
                f"server {self.kind} did not start in {self._start_timeout}s"
            ) from None
        if not line.startswith(b"PORT "):
            stderr = await self.stop()
            raise RuntimeError(f"server {self.kind} failed to start:\n{stderr}")
        self.port = int(line.split()[1])
        return self

    async def mark(self, wait: float, signum: int = signal.SIGUSR1) -> None:
        """Send ``signum`` and wait for the server's ``MARK`` line (see :mod:`bench.servers`)."""
        assert self._process is not None
        assert self._process.stdout is not None
        self._process.send_signal(signum)
        line = await asyncio.wait_for(self._process.stdout.readline(), wait)
        if line.strip() != b"MARK":
            raise RuntimeError(f"server {self.kind} answered {line!r} to SIGUSR1")

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def stop(self) -> str:
        """Stop the server (SIGTERM, then SIGKILL after the timeout); return its stderr."""
        process = self._process
        if process is None:
            return ""
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        try:
            _, stderr = await asyncio.wait_for(process.communicate(), self._stop_timeout)
        except TimeoutError:
            process.kill()
            _, stderr = await process.communicate()
        return stderr.decode(errors="replace")
