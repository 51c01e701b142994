"""The registry of scenarios: each one runs against one server and returns its figures.

A scenario lives in its own module, which calls :func:`register`; the modules are listed in
:data:`SCENARIO_MODULES`. Adding a scenario is a new module plus one line there; a scenario
that needs servers of its own (fan-out) names them with ``server`` and ``only_kinds``.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from ..process import ServerProcess

__all__ = ["SCENARIOS", "Metric", "Scenario", "Settings", "load_scenarios", "register"]

#: The modules that register scenarios, in the order the table shows them.
SCENARIO_MODULES = (
    "bench.scenarios.echo",
    "bench.scenarios.memory",
    "bench.scenarios.fanout",
    "bench.scenarios.scale",
    "bench.scenarios.keepalive",
)


@dataclass(frozen=True)
class Settings:
    """How much load a run puts on each server; every loop is bounded by these."""

    connections: int = 50
    messages: int = 400
    warmup_messages: int = 20
    memory_connections: int = 2000
    #: Seconds a single load phase may take before it stops early.
    time_limit: float = 60.0
    #: Fan-out: members of the group, and messages published to all of them.
    fanout_members: int = 1000
    fanout_rounds: int = 30
    #: The scale scenario: connections in one server process, and publishes to all.
    scale_connections: int = 10_000
    scale_rounds: int = 5
    #: The keepalive scenario: its ``heartbeat`` and how many silent peers, one at a time.
    keepalive_heartbeat: float = 2.0
    keepalive_peers: int = 5


#: Full runs, as the docs report them, and quick runs (under a minute in all).
FULL = Settings()
QUICK = Settings(
    connections=20,
    messages=250,
    warmup_messages=10,
    memory_connections=200,
    fanout_members=200,
    fanout_rounds=10,
    scale_connections=500,
    scale_rounds=2,
    keepalive_heartbeat=0.5,
    keepalive_peers=2,
)


@dataclass(frozen=True)
class Metric:
    """One figure a scenario reports: lower is better for all of them."""

    key: str
    label: str
    unit: str
    #: How the table compares a kind with raw aiohttp: a ratio or a difference.
    compare: Literal["ratio", "difference"] = "ratio"


Figures = dict[str, float]
#: Starts the server of one kind on a CPU (or unpinned) for the run's settings;
#: ``ServerProcess(kind, cpu)`` by default.
ServerFactory = Callable[[str, int | None, "Settings"], ServerProcess]


@dataclass(frozen=True)
class Scenario:
    """A named workload, the figures it reports and the server kinds it runs against."""

    name: str
    description: str
    metrics: tuple[Metric, ...]
    run: Callable[[ServerProcess, Settings], Awaitable[Figures]]
    #: Kinds that only make sense in this scenario (for example stdlib json for JSON echo).
    extra_kinds: tuple[str, ...] = ()
    #: When set, the scenario runs against these kinds alone (the others do not apply).
    only_kinds: tuple[str, ...] | None = None
    #: The scenario's own servers, when the echo servers of :mod:`bench.servers` do not fit.
    server: ServerFactory | None = None
    #: Why a kind cannot run here (a missing service), or ``None`` when it can.
    unavailable: Callable[[str], str | None] | None = None


SCENARIOS: dict[str, Scenario] = {}


def register(scenario: Scenario) -> Scenario:
    """Add a scenario to the registry; its name must be new."""
    if scenario.name in SCENARIOS:
        raise ValueError(f"scenario {scenario.name!r} is registered twice")
    SCENARIOS[scenario.name] = scenario
    return scenario


def load_scenarios() -> dict[str, Scenario]:
    """Import every scenario module and return the registry."""
    for module in SCENARIO_MODULES:
        importlib.import_module(module)
    return SCENARIOS
