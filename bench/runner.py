"""Runs scenarios against server kinds, interleaved over rounds, and collects the figures."""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field

from .process import ServerProcess
from .scenarios import Scenario, Settings
from .servers import BASELINE, KINDS, SCENARIO_ONLY_KINDS, kind_available

__all__ = ["Results", "pick_cpus", "run_all"]


@dataclass
class Results:
    """Every figure of every run: ``figures[scenario][kind]`` is one dict per round."""

    figures: dict[str, dict[str, list[dict[str, float]]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(list))
    )
    skipped: dict[str, str] = field(default_factory=dict)
    #: Runs that failed (a dropped connection on a loaded machine, say), kept out of the table.
    failures: list[str] = field(default_factory=list)


def pick_cpus() -> tuple[int | None, int | None]:
    """The server's core and the client's: two different ones; none without two or taskset."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2 or shutil.which("taskset") is None:
        return None, None
    return cpus[0], cpus[1]


def kinds_for(scenario: Scenario, wanted: list[str], skipped: dict[str, str]) -> list[str]:
    """The kinds a scenario runs against, the baseline first, unavailable ones skipped."""
    kinds = []
    for name in wanted:
        kind = KINDS[name]
        if name in SCENARIO_ONLY_KINDS and name not in scenario.extra_kinds:
            continue
        if scenario.only_kinds is not None and name not in scenario.only_kinds:
            continue
        if not kind_available(kind):
            skipped[name] = f"needs {', '.join(kind.requires)} (pip install -e '.[bench]')"
            continue
        reason = scenario.unavailable(name) if scenario.unavailable is not None else None
        if reason is not None:
            skipped[f"{name} in {scenario.name}"] = reason
            continue
        kinds.append(name)
    return kinds


async def run_all(
    scenarios: list[Scenario],
    kinds: list[str],
    rounds: int,
    settings: Settings,
    server_cpu: int | None,
    log: bool = True,
) -> Results:
    """Run every scenario against every kind, kinds interleaved, ``rounds`` times over."""
    results = Results()
    if BASELINE not in kinds:
        kinds = [BASELINE, *kinds]
    for round_number in range(rounds):
        for scenario in scenarios:
            order = kinds_for(scenario, kinds, results.skipped)
            # Rotate the order each round so no kind always runs first or last.
            shift = round_number % len(order)
            order = order[shift:] + order[:shift]
            for kind in order:
                started = time.perf_counter()
                try:
                    if scenario.server is not None:
                        server = scenario.server(kind, server_cpu, settings)
                    else:
                        server = ServerProcess(kind, server_cpu)
                    async with server:
                        figures = await scenario.run(server, settings)
                except (OSError, RuntimeError, TimeoutError) as error:
                    failure = f"round {round_number + 1} {scenario.name} {kind}: {error!r}"
                    results.failures.append(failure)
                    print(f"failed: {failure}", file=sys.stderr, flush=True)
                    continue
                results.figures[scenario.name][kind].append(figures)
                if log:
                    shown = ", ".join(
                        f"{key}={value:.3g}" for key, value in figures.items() if key != "messages"
                    )
                    print(
                        f"round {round_number + 1}/{rounds} {scenario.name:<12} {kind:<22} "
                        f"{shown} ({time.perf_counter() - started:.1f}s)",
                        file=sys.stderr,
                        flush=True,
                    )
    return results
