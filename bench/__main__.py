"""``python -m bench``: aioendpoints against raw aiohttp and its peers; see ``--help``."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import shlex
import signal
import sys

from . import callgrind
from .report import machine, table
from .runner import pick_cpus, run_all
from .scenarios import FULL, QUICK, load_scenarios
from .servers import KINDS, raise_file_limit


def _names(text: str) -> list[str]:
    return [name for name in text.split(",") if name]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    scenarios = load_scenarios()
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Server CPU per message, latency and memory per connection of aioendpoints, "
        "raw aiohttp, Starlette+uvicorn and python-websockets, on loopback.",
    )
    parser.add_argument("--quick", action="store_true", help="a light run, under a minute")
    parser.add_argument("--rounds", type=int, help="rounds of every kind (default 3, quick 1)")
    parser.add_argument(
        "--scenarios",
        type=_names,
        default=list(scenarios),
        help=f"comma-separated, from: {','.join(scenarios)} (default all)",
    )
    parser.add_argument(
        "--kinds",
        type=_names,
        default=list(KINDS),
        help=f"comma-separated, from: {','.join(KINDS)} (default all; aiohttp always runs)",
    )
    parser.add_argument("--json", metavar="PATH", help="also write every figure to PATH")
    parser.add_argument(
        "--plot",
        metavar="PATH",
        help="with --callgrind: also draw instructions per message as a PNG at PATH",
    )
    parser.add_argument(
        "--callgrind",
        action="store_true",
        help="count instructions per message under valgrind instead (deterministic, slow)",
    )
    args = parser.parse_args(argv)
    for name in args.scenarios:
        if name not in scenarios:
            parser.error(f"unknown scenario {name!r}; choose from {', '.join(scenarios)}")
    for name in args.kinds:
        if name not in KINDS:
            parser.error(f"unknown kind {name!r}; choose from {', '.join(KINDS)}")
    return args


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print the table."""
    args = parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so the servers this run started are stopped too.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    if args.callgrind:
        callgrind.main(args)
        return
    scenarios = [load_scenarios()[name] for name in args.scenarios]
    settings = QUICK if args.quick else FULL
    rounds = args.rounds or (1 if args.quick else 3)
    raise_file_limit()
    server_cpu, client_cpu = pick_cpus()
    if client_cpu is None:
        print("warning: not pinned (needs two CPUs and taskset)", file=sys.stderr)
    else:
        os.sched_setaffinity(0, {client_cpu})  # as `taskset -c N` does for the servers
    results = asyncio.run(run_all(scenarios, args.kinds, rounds, settings, server_cpu))
    print("command: python -m bench " + shlex.join(sys.argv[1:] if argv is None else argv))
    print("\n".join(machine()))
    print(
        f"load: {settings.connections} connections x {settings.messages} round trips "
        f"(16 KiB: half), {settings.memory_connections} idle connections, {rounds} round(s); "
        f"server on CPU {server_cpu}, client on CPU {client_cpu}"
    )
    for kind, reason in results.skipped.items():
        print(f"skipped {kind}: {reason}")
    for failure in results.failures:
        print(f"failed run (left out): {failure}")
    print(table(scenarios, results))
    if args.json:
        with open(args.json, "w") as output:
            json.dump(
                {
                    "settings": dataclasses.asdict(settings),
                    "rounds": rounds,
                    "figures": results.figures,
                    "skipped": results.skipped,
                    "failures": results.failures,
                },
                output,
                indent=2,
            )


if __name__ == "__main__":
    main()
