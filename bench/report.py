"""The table: medians with min-max, compared with raw aiohttp; and the machine it ran on."""

from __future__ import annotations

import os
import platform
import statistics
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from .runner import Results
from .scenarios import Metric, Scenario
from .servers import BASELINE, KINDS

__all__ = ["machine", "table"]

_PACKAGES = ("aioendpoints", "aiohttp", "orjson", "starlette", "uvicorn", "websockets")


def machine() -> list[str]:
    """Lines describing the machine and the versions under test."""
    model = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    versions = []
    for package in _PACKAGES:
        try:
            versions.append(f"{package} {version(package)}")
        except PackageNotFoundError:
            versions.append(f"{package} (not installed)")
    return [
        f"machine: {os.cpu_count()} CPUs ({model}), {platform.system()} {platform.release()}",
        f"python: {platform.python_implementation()} {platform.python_version()}",
        f"versions: {', '.join(versions)}",
    ]


def _row(
    metric: Metric, kind: str, runs: list[dict[str, float]], baseline: float | None
) -> list[str]:
    values = [figures[metric.key] for figures in runs]
    median = statistics.median(values)
    if baseline is None or baseline == 0:
        compared = "-"
    elif metric.compare == "ratio":
        compared = f"{median / baseline:.2f}x"
    else:
        compared = f"{median - baseline:+.2f} {metric.unit}"
    busy = ""
    if "server_busy" in runs[0]:
        server = statistics.median(figures["server_busy"] for figures in runs)
        client = statistics.median(figures["client_busy"] for figures in runs)
        busy = f"{server:.0%}/{client:.0%}"
    return [
        metric.label,
        KINDS[kind].label,
        f"{median:.2f} {metric.unit}",
        f"{min(values):.2f}-{max(values):.2f}",
        compared,
        busy,
    ]


def table(scenarios: list[Scenario], results: Results) -> str:
    """An RST simple table of every metric: median, min-max and the comparison with raw aiohttp.

    The last column is how busy the server's core and the client's core were during the load
    (CPU time over wall time): a server near 100% and a client below it show the server was
    the bottleneck.
    """
    header = ["scenario", "figure", "kind", "median", "min-max", "vs raw aiohttp", "busy srv/cli"]
    rows: list[list[str]] = []
    for scenario in scenarios:
        by_kind = results.figures.get(scenario.name, {})
        for metric in scenario.metrics:
            base_runs = by_kind.get(BASELINE, [])
            baseline = statistics.median(f[metric.key] for f in base_runs) if base_runs else None
            for kind, runs in by_kind.items():
                rows.append([scenario.name, *_row(metric, kind, runs, baseline)])
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    rule = "  ".join("=" * width for width in widths)
    lines = [rule, "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)), rule]
    for row in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    lines.append(rule)
    return "\n".join(lines)
