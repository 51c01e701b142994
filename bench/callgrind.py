"""``python -m bench --callgrind``: user-space instructions per message, counted by callgrind.

Wall-clock and CPU figures wander by 15-20% on shared machines; instruction counts do not.
Each server runs once under ``valgrind --tool=callgrind --dump-before=getppid``. For each
echo, the harness runs a short and a long series of strict round trips over one connection,
and marks the start and end of each series (SIGUSR1: the server calls ``getppid()``, so
callgrind writes the counts of the series to a file of its own). What the two series share
(the marks, the event loop waking up) cancels out in the difference, so
(long - short) / (extra messages) is the cost of one echoed message.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

from .client import OP_BINARY, OP_TEXT, Connection, connect, masked_frame
from .process import ServerProcess
from .report import machine
from .scenarios import load_scenarios
from .scenarios.echo import BINARY_PAYLOAD, JSON_PAYLOAD, TEXT_PAYLOAD
from .scenarios.load import HOST, close_all, open_connections
from .servers import APPS, BASELINE, KINDS, SCENARIO_ONLY_KINDS, kind_available

__all__ = ["main"]

#: Scenario name -> (path, opcode, payload).
ECHOES = {
    "echo-text": ("/text", OP_TEXT, TEXT_PAYLOAD),
    "echo-json": ("/json", OP_TEXT, JSON_PAYLOAD),
    "echo-bytes": ("/bytes", OP_BINARY, BINARY_PAYLOAD),
}
FULL_LENGTHS = (500, 2500)
QUICK_LENGTHS = (100, 500)
_WARMUP = 50
#: Connections opened in the short and long series of the connect count.
CONNECT_LENGTHS = (100, 300)
QUICK_CONNECT_LENGTHS = (50, 150)
#: Fan-out under callgrind: members, and the short and long series of publishes to all.
FANOUT_MEMBERS = 1000
FANOUT_LENGTHS = (3, 13)
QUICK_FANOUT = (200, (2, 6))
_FANOUT_WARMUP = 2
_SLOW = 600.0  # seconds: valgrind makes everything 50-100 times slower
#: The fan-out figure per published message (the other, ``fanout``, is per recipient).
FANOUT_MESSAGE = "fanout-message"
#: The suffix of an echo's figure measured with the server under ``web.run_app``.
DEPLOYED = "@deployed"


async def _series(connection: Connection, frame: bytes, count: int) -> None:
    for _ in range(count):
        await asyncio.wait_for(connection.round_trip(frame), _SLOW)


def _total(dump: Path) -> int:
    for line in dump.read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise RuntimeError(f"no instruction total in {dump}")


def _callgrind(output: Path) -> tuple[str, ...]:
    """The command that runs a server under callgrind, dumping at each mark into ``output``."""
    return (
        "valgrind",
        "--tool=callgrind",
        "--dump-before=getppid",
        f"--callgrind-out-file={output}",
    )


#: A fixed hash seed keeps dict and set layouts, hence instruction counts, repeatable.
_FIXED_HASH_SEED = {"PYTHONHASHSEED": "0"}


def _server_under_callgrind(kind: str, output: Path, deployed: bool) -> ServerProcess:
    """A server process of ``kind`` under callgrind, its dumps in ``output``."""
    return ServerProcess(
        kind,
        None,
        _callgrind(output),
        start_timeout=_SLOW,
        stop_timeout=_SLOW,
        env=_FIXED_HASH_SEED,
        deployed=deployed,
    )


async def measure_kind(
    kind: str, echoes: list[str], lengths: tuple[int, int], directory: Path, deployed: bool = False
) -> dict[str, float]:
    """Run ``kind`` under callgrind through every echo; return instructions per message."""
    output = directory / f"{kind}{'-deployed' if deployed else ''}.out"
    server = _server_under_callgrind(kind, output, deployed)
    marks = 0
    series: dict[str, tuple[int, int]] = {}  # echo -> dump numbers of its two series
    async with server:
        for echo in echoes:
            path, opcode, payload = ECHOES[echo]
            connection = await connect(HOST, server.port, path, wait=_SLOW)
            frame = masked_frame(opcode, payload)
            await _series(connection, frame, _WARMUP)
            dumps = []
            for count in lengths:
                await server.mark(_SLOW)
                marks += 1
                await _series(connection, frame, count)
                await server.mark(_SLOW)
                marks += 1
                dumps.append(marks)  # the dump made at this mark holds the series
            await connection.close(wait=_SLOW)
            series[echo] = (dumps[0], dumps[1])
    extra = lengths[1] - lengths[0]
    return {
        echo: (_total(Path(f"{output}.{long}")) - _total(Path(f"{output}.{short}"))) / extra
        for echo, (short, long) in series.items()
    }


async def measure_connect(kind: str, lengths: tuple[int, int], directory: Path) -> float:
    """Run ``kind`` as deployed under callgrind; return instructions per accepted handshake.

    Two series of connections are opened (100 handshakes at a time, as the scale scenario
    does) and kept open; each connection echoes once, so that its view is parked like those
    of the scale scenario.
    """
    output = directory / f"connect-{kind}.out"
    server = _server_under_callgrind(kind, output, deployed=kind in APPS)
    frame = masked_frame(OP_TEXT, TEXT_PAYLOAD)
    opened: list[Connection] = []
    dumps = []
    marks = 0
    async with server:
        warmup = await open_connections(server.port, "/text", 20, _SLOW)
        await asyncio.gather(*(c.round_trip(frame) for c in warmup))
        opened += warmup
        for count in lengths:
            await server.mark(_SLOW, signal.SIGUSR2)  # collects garbage first
            marks += 1
            connections = await open_connections(server.port, "/text", count, _SLOW)
            await asyncio.gather(*(c.round_trip(frame) for c in connections))
            opened += connections
            await server.mark(_SLOW)
            marks += 1
            dumps.append(marks)
        await close_all(opened)
    short, long = (_total(Path(f"{output}.{number}")) for number in dumps)
    return (long - short) / (lengths[1] - lengths[0])


async def measure_fanout(
    kind: str, members: int, lengths: tuple[int, int], directory: Path
) -> float:
    """Run a fan-out server of ``kind`` under callgrind; return instructions per published message.

    Each series is a run of publishes to every member, and as many rounds that publish
    nothing (the HTTP request that drives a round), whose count is subtracted. Divided by
    ``members``, the figure is the cost per recipient (what the per-message work adds to
    it, such as a history's append, is spread over the members).
    """
    from aiohttp import ClientSession

    from .scenarios.fanout import Publisher, fanout_server

    output = directory / f"fanout-{kind}.out"
    server = fanout_server(
        kind,
        None,
        wrapper=_callgrind(output),
        start_timeout=_SLOW,
        stop_timeout=_SLOW,
        env=_FIXED_HASH_SEED,
    )
    marks = 0
    dumps: dict[str, list[int]] = {"publish": [], "nothing": []}
    async with server, ClientSession() as session:
        publisher = Publisher(session, server)
        await publisher.connect(members, wait=_SLOW)
        number = 0
        for way in ("publish", "nothing"):
            for _ in range(_FANOUT_WARMUP):
                await publisher.publish(way, number, wait=_SLOW)
                number += 1
            for count in lengths:
                await server.mark(_SLOW, signal.SIGUSR2)  # collects garbage first
                marks += 1
                for _ in range(count):
                    await publisher.publish(way, number, wait=_SLOW)
                    number += 1
                await server.mark(_SLOW)
                marks += 1
                dumps[way].append(marks)
        await publisher.close()

    def per_round(way: str) -> float:
        short, long = dumps[way]
        counts = _total(Path(f"{output}.{long}")) - _total(Path(f"{output}.{short}"))
        return counts / (lengths[1] - lengths[0])

    return per_round("publish") - per_round("nothing")


def _runs_in(kind: str, echo: str) -> bool:
    return kind not in SCENARIO_ONLY_KINDS or kind in load_scenarios()[echo].extra_kinds


def _kinds(args: argparse.Namespace) -> list[str]:
    kinds = []
    for kind in [BASELINE, *(k for k in args.kinds if k != BASELINE)]:
        if kind_available(KINDS[kind]):
            kinds.append(kind)
        else:
            print(f"skipped {kind}: needs {', '.join(KINDS[kind].requires)}")
    return kinds


async def _measure_all(
    kinds: list[str],
    echoes: list[str],
    lengths: tuple[int, int],
    directory: Path,
    fanout_kinds_wanted: list[str],
    fanout_load: tuple[int, tuple[int, int]],
    deployed: bool = True,
    connect_kinds: tuple[str, ...] = (),
    connect_lengths: tuple[int, int] = CONNECT_LENGTHS,
) -> dict[str, dict[str, float]]:
    # Two servers at a time: instruction counts do not depend on how busy the machine is.
    slots = asyncio.Semaphore(2)
    # The redis:// fan-out servers share one Redis and one channel: one at a time, or
    # each would also deliver the other's publishes.
    redis_slot = asyncio.Semaphore(1)

    async def one(kind: str, deployed: bool = False) -> dict[str, float]:
        wanted = [e for e in echoes if _runs_in(kind, e)]
        async with slots:
            started = time.perf_counter()
            figures = await measure_kind(kind, wanted, lengths, directory, deployed)
        if deployed:
            figures = {f"{echo}{DEPLOYED}": figure for echo, figure in figures.items()}
        shown = ", ".join(f"{echo} {figure:,.0f}" for echo, figure in figures.items())
        print(f"{kind:<22} {shown} ({time.perf_counter() - started:.0f}s)", file=sys.stderr)
        return figures

    async def fanout(kind: str, members: int, lengths: tuple[int, int]) -> dict[str, float]:
        redis = redis_slot if kind.startswith("function-redis") else contextlib.nullcontext()
        async with redis, slots:
            started = time.perf_counter()
            per_message = await measure_fanout(kind, members, lengths, directory)
        took = time.perf_counter() - started
        figure = per_message / members
        shown = f"fanout {figure:,.0f}, per message {per_message:,.0f}"
        print(f"{kind:<22} {shown} ({took:.0f}s)", file=sys.stderr)
        return {"fanout": figure, FANOUT_MESSAGE: per_message}

    echo_kinds = [kind for kind in kinds if any(_runs_in(kind, echo) for echo in echoes)]
    jobs = [one(kind) for kind in echo_kinds]
    deployed_kinds = [kind for kind in echo_kinds if kind in APPS] if deployed else []
    jobs += [one(kind, deployed=True) for kind in deployed_kinds]
    fanout_kinds = [kind for kind in fanout_kinds_wanted if kind in kinds]
    jobs += [fanout(kind, *fanout_load) for kind in fanout_kinds]

    async def connects(kind: str) -> dict[str, float]:
        async with slots:
            started = time.perf_counter()
            figure = await measure_connect(kind, connect_lengths, directory)
        took = time.perf_counter() - started
        print(f"{kind:<22} connect {figure:,.0f} ({took:.0f}s)", file=sys.stderr)
        return {f"connect{DEPLOYED}": figure}

    jobs += [connects(kind) for kind in connect_kinds]
    results = await asyncio.gather(*jobs)
    figures: dict[str, dict[str, float]] = {kind: {} for kind in kinds}
    job_kinds = [*echo_kinds, *deployed_kinds, *fanout_kinds, *connect_kinds]
    for kind, result in zip(job_kinds, results, strict=True):
        figures[kind].update(result)
    return figures


def main(args: argparse.Namespace) -> None:
    """Count instructions per message for each kind and echo, and print the table."""
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (Debian: apt-get install valgrind)")
    lengths = QUICK_LENGTHS if args.quick else FULL_LENGTHS
    echoes = [name for name in args.scenarios if name in ECHOES]
    kinds = _kinds(args)
    fanout_kinds: list[str] = []
    if "fanout" in args.scenarios:
        from .scenarios.fanout import KINDS as FANOUT_KINDS
        from .scenarios.fanout import _unavailable

        for kind in FANOUT_KINDS:
            if not kind_available(KINDS[kind]):
                print(f"skipped {kind} in fanout: needs {', '.join(KINDS[kind].requires)}")
            elif kind.startswith("function-redis") and _unavailable(kind):
                print(f"skipped {kind} in fanout: {_unavailable(kind)}")
            elif kind == BASELINE or kind in args.kinds:
                fanout_kinds.append(kind)
    kinds = [
        kind
        for kind in kinds
        if any(_runs_in(kind, echo) for echo in echoes) or kind in fanout_kinds
    ]
    fanout_load = QUICK_FANOUT if args.quick else (FANOUT_MEMBERS, FANOUT_LENGTHS)
    connect_kinds: tuple[str, ...] = ()
    if "scale" in args.scenarios:
        connect_kinds = tuple(k for k in (BASELINE, "function", "endpoint") if k in args.kinds)
        connect_kinds = (BASELINE, *(k for k in connect_kinds if k != BASELINE))
        kinds = list(dict.fromkeys([*kinds, *connect_kinds]))
    connect_lengths = QUICK_CONNECT_LENGTHS if args.quick else CONNECT_LENGTHS
    with tempfile.TemporaryDirectory(prefix="bench-callgrind-") as directory:
        figures = asyncio.run(
            _measure_all(
                kinds,
                echoes,
                lengths,
                Path(directory),
                fanout_kinds,
                fanout_load,
                connect_kinds=connect_kinds,
                connect_lengths=connect_lengths,
            )
        )
    print(f"command: python -m bench --callgrind{' --quick' if args.quick else ''}")
    print("\n".join(machine()))
    print(f"series: {lengths[0]} and {lengths[1]} strict round trips over one connection")
    if fanout_kinds:
        members, (short, long) = fanout_load
        print(
            f"fanout: {short} and {long} publishes to {members} members, less as many that "
            "publish nothing; fanout is per recipient, fanout-message per published message"
        )
    print(
        "bare: aiohttp kinds on a bare AppRunner, nothing else in the loop; as deployed: "
        "under web.run_app, whose loop keeps a timer (the peers run their own servers: "
        "one figure). The targets use the deployed figures."
    )
    if connect_kinds:
        short, long = connect_lengths
        print(
            f"connect: {short} and {long} connections opened and kept open, as deployed; "
            "the figure is per connection"
        )
    shown = [
        *echoes,
        *(["fanout", FANOUT_MESSAGE] if fanout_kinds else []),
        *(["connect"] if connect_kinds else []),
    ]
    print(render(figures, kinds, shown))
    print(targets(figures))
    if args.json:
        Path(args.json).write_text(json.dumps({"callgrind": figures}, indent=2))
    if args.plot:
        from .plot import plot_instructions

        plot_instructions(figures, Path(args.plot))
        print(f"plot: {args.plot}")


#: The issue's targets: aioendpoints' instructions per message over raw aiohttp's, at most
#: (fan-out: per recipient; connect: per handshake, for a connect rate of at least 0.9x).
TARGETS = {
    "echo-text": 1.05,
    "echo-bytes": 1.03,
    "echo-json": 0.80,
    "fanout": 0.90,
    "connect": 1 / 0.9,
}
TARGET_KINDS = ("function", "endpoint")


def render(figures: dict[str, dict[str, float]], kinds: list[str], scenarios: list[str]) -> str:
    """The table: each kind's instructions per message, bare and as deployed, and the ratios."""
    header = ("scenario", "kind", "bare", "vs raw", "as deployed", "vs raw")
    cells = []
    for echo in scenarios:
        baseline = figures[BASELINE].get(echo)
        deployed_baseline = figures[BASELINE].get(echo + DEPLOYED)
        for kind in kinds:
            if echo + DEPLOYED in figures[kind] and echo not in figures[kind]:
                row = [echo, KINDS[kind].label, "", ""]
            elif echo not in figures[kind] or baseline is None:
                continue
            else:
                figure = figures[kind][echo]
                row = [echo, KINDS[kind].label, f"{figure:,.0f}", f"{figure / baseline:.3f}x"]
            deployed = figures[kind].get(echo + DEPLOYED)
            if deployed is not None and deployed_baseline is not None:
                row += [f"{deployed:,.0f}", f"{deployed / deployed_baseline:.3f}x"]
            elif kind not in APPS and deployed_baseline is not None and echo in figures[kind]:
                row += [f"{figure:,.0f}", f"{figure / deployed_baseline:.3f}x"]
            else:
                row += ["", ""]
            cells.append(tuple(row))
    widths = [max(len(row[i]) for row in [header, *cells]) for i in range(len(header))]
    rule = "  ".join("=" * width for width in widths)
    lines = [rule, "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)), rule]
    for cell_row in cells:
        lines.append("  ".join(c.ljust(w) for c, w in zip(cell_row, widths, strict=True)).rstrip())
    lines.append(rule)
    return "\n".join(lines)


def targets(figures: dict[str, dict[str, float]]) -> str:
    """Each target, met or missed and by how much, from the deployed figures where measured."""
    lines = ["targets (aioendpoints / raw aiohttp, instructions per message):"]
    for echo, limit in TARGETS.items():
        for kind in TARGET_KINDS:
            key = echo + DEPLOYED if echo + DEPLOYED in figures.get(kind, {}) else echo
            if key not in figures.get(kind, {}) or key not in figures[BASELINE]:
                continue
            ratio = figures[kind][key] / figures[BASELINE][key]
            mode = "as deployed" if key != echo else "bare"
            verdict = "met" if ratio <= limit else f"MISSED by {(ratio / limit - 1) * 100:.1f}%"
            lines.append(f"  {echo:<11} {kind:<9} {ratio:.3f}x <= {limit:.2f}x ({mode}): {verdict}")
    return "\n".join(lines)
