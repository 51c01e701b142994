"""``python -m bench --callgrind``: user-space instructions per message, counted by callgrind.

Wall-clock and CPU figures wander by 15-20% on shared machines; instruction counts do not.
Each server runs under ``valgrind --tool=callgrind`` twice, for a short and a long run of
strict round trips over one connection; start-up, imports and the handshake are the same in
both, so (long - short) / (extra messages) is the cost of one echoed message.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from pathlib import Path

from .client import OP_BINARY, OP_TEXT, connect, masked_frame
from .process import ServerProcess
from .report import machine
from .scenarios.echo import BINARY_PAYLOAD, JSON_PAYLOAD, TEXT_PAYLOAD
from .scenarios.load import HOST
from .servers import BASELINE, KINDS, kind_available

__all__ = ["main"]

#: Scenario name → (path, opcode, payload).
ECHOES = {
    "echo-text": ("/text", OP_TEXT, TEXT_PAYLOAD),
    "echo-json": ("/json", OP_TEXT, JSON_PAYLOAD),
    "echo-bytes": ("/bytes", OP_BINARY, BINARY_PAYLOAD),
}
FULL_LENGTHS = (200, 1200)
QUICK_LENGTHS = (50, 250)
_START_TIMEOUT = 300.0  # valgrind makes start-up 50-100 times slower
_ROUND_TRIP_TIMEOUT = 30.0


async def count_instructions(kind: str, echo: str, messages: int, directory: Path) -> int:
    """Run ``kind`` under callgrind for ``messages`` round trips; return its total Ir."""
    path, opcode, payload = ECHOES[echo]
    output = directory / f"{kind}-{echo}-{messages}.out"
    wrapper = ("valgrind", "--tool=callgrind", f"--callgrind-out-file={output}")
    # A fixed hash seed keeps dict and set layouts, hence instruction counts, repeatable.
    server = ServerProcess(
        kind,
        None,
        wrapper,
        start_timeout=_START_TIMEOUT,
        stop_timeout=_START_TIMEOUT,
        env={"PYTHONHASHSEED": "0"},
    )
    async with server:
        connection = await connect(HOST, server.port, path, wait=_START_TIMEOUT)
        frame = masked_frame(opcode, payload)
        for _ in range(messages):
            await asyncio.wait_for(connection.round_trip(frame), _ROUND_TRIP_TIMEOUT)
        await connection.close(wait=_ROUND_TRIP_TIMEOUT)
    for line in output.read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise RuntimeError(f"no instruction total in {output}")


async def per_message(kind: str, echo: str, lengths: tuple[int, int], directory: Path) -> float:
    """Instructions per echoed message: the difference of two run lengths."""
    short, long = await asyncio.gather(
        *(count_instructions(kind, echo, n, directory) for n in lengths)
    )
    return (long - short) / (lengths[1] - lengths[0])


def main(args: argparse.Namespace) -> None:
    """Count instructions per message for each kind and echo, and print the table."""
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (Debian: apt-get install valgrind)")
    lengths = QUICK_LENGTHS if args.quick else FULL_LENGTHS
    echoes = [name for name in args.scenarios if name in ECHOES]
    if args.quick and len(echoes) == len(ECHOES):
        echoes = ["echo-text"]
    kinds = [BASELINE, *(k for k in args.kinds if k != BASELINE)]
    rows: list[tuple[str, str, float, float]] = []
    with tempfile.TemporaryDirectory(prefix="bench-callgrind-") as directory:
        for echo in echoes:
            baseline = 0.0
            for kind in kinds:
                if kind == "function-stdlib-json" and echo != "echo-json":
                    continue
                if not kind_available(KINDS[kind]):
                    print(f"skipped {kind}: needs {', '.join(KINDS[kind].requires)}")
                    continue
                started = time.perf_counter()
                figure = asyncio.run(per_message(kind, echo, lengths, Path(directory)))
                baseline = figure if kind == BASELINE else baseline
                rows.append((echo, kind, figure, figure / baseline if baseline else 0.0))
                print(
                    f"{echo:<11} {kind:<22} {figure:,.0f} instructions/message "
                    f"({time.perf_counter() - started:.0f}s)",
                    file=sys.stderr,
                    flush=True,
                )
    print(f"command: python -m bench --callgrind{' --quick' if args.quick else ''}")
    print("\n".join(machine()))
    print(f"run lengths: {lengths[0]} and {lengths[1]} round trips over one connection")
    header = ("scenario", "kind", "instructions/message", "vs raw aiohttp")
    cells = [
        (echo, KINDS[kind].label, f"{figure:,.0f}", f"{ratio:.3f}x" if ratio else "-")
        for echo, kind, figure, ratio in rows
    ]
    widths = [max(len(row[i]) for row in [header, *cells]) for i in range(len(header))]
    rule = "  ".join("=" * width for width in widths)
    print(rule)
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print(rule)
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    print(rule)
