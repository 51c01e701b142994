"""10,000 connections in one server process: connect time, memory and fan-out per connection.

The fan-out servers of :mod:`bench.scenarios.fanout` (raw aiohttp with a ``send_str`` loop,
an aioendpoints function view and a class endpoint, each with its defaults) get
``Settings.scale_connections`` member connections, opened 100 handshakes at a time from the
harness process; then one message is published to all of them, a few times. Reported per
connection: the handshake time while opening them, the server's resident memory (after a
full garbage collection), and the server's CPU time per recipient of a publish.

Every open connection needs a file descriptor on each side: the harness and the servers
raise their soft limit to the hard one (``ulimit -Hn``), which must be above the number of
connections (Debian's default hard limit, 1,048,576 with systemd, or ``ulimit -Hn 20000``
as root).
"""

from __future__ import annotations

import resource

from ..process import ServerProcess
from . import Figures, Scenario, Settings, register
from .fanout import CONNECT, CPU, MEMORY, fan_out, fanout_server

__all__: list[str] = []

#: File descriptors besides the connections' (the listening socket, Python's own files).
_SPARE_FILES = 200


async def _scale(server: ServerProcess, settings: Settings) -> Figures:
    needed = settings.scale_connections + _SPARE_FILES
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        raise RuntimeError(
            f"{settings.scale_connections} connections need {needed} open files, but the "
            f"limit is {soft} (hard {hard}): raise it with `ulimit -Hn {needed}` as root"
        )
    return await fan_out(server, settings.scale_connections, settings.scale_rounds)


register(
    Scenario(
        "scale",
        "many connections in one process: handshake time, memory and fan-out per connection",
        (CONNECT, MEMORY, CPU),
        _scale,
        only_kinds=("aiohttp", "function", "endpoint"),
        server=lambda kind, cpu, settings: fanout_server(kind, cpu),
    )
)
