"""What a test process holds: tasks, file descriptors, memory; and waiting for it to settle.

The fault and load tests take a :class:`Baseline` with the server up and no client
connected, do their damage, then check that everything went back to it.
"""

from __future__ import annotations

import asyncio
import os
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Baseline", "open_file_descriptors", "raise_open_file_limit", "rss_bytes", "settle"]


def open_file_descriptors() -> int:
    """How many file descriptors this process has open (Linux: ``/proc/self/fd``)."""
    return len(os.listdir("/proc/self/fd"))


def rss_bytes() -> int:
    """This process's resident memory now, in bytes."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def raise_open_file_limit(needed: int) -> None:
    """Raise the soft limit on open files to at least ``needed``, up to the hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


async def settle(condition: Callable[[], bool], within: float = 5.0) -> bool:
    """Poll ``condition`` until it holds or ``within`` seconds pass; return its last value."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


@dataclass(frozen=True)
class Baseline:
    """The tasks and file descriptors of a quiet process, to compare against later."""

    tasks: int
    file_descriptors: int

    @classmethod
    def take(cls) -> Baseline:
        """Record the current counts (call it from a running test)."""
        return cls(len(asyncio.all_tasks()), open_file_descriptors())

    async def restored(self, within: float = 5.0) -> Baseline:
        """Wait for the counts to come back down; return what they are then."""
        await settle(self._holds, within)
        return Baseline.take()

    def _holds(self) -> bool:
        return Baseline.take() == self
