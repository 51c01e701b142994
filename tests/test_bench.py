"""The benchmark harness runs end to end (its figures are not checked: they are timings)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench import typed_dispatch
from bench.client import masked_frame
from bench.scenarios import QUICK, Scenario, load_scenarios, register

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_quick_text_echo_prints_the_table_and_every_figure(tmp_path: Path) -> None:
    """`python -m bench --quick` on one scenario prints the table and writes each figure."""
    output = tmp_path / "figures.json"
    command = [sys.executable, "-m", "bench", "--quick", "--scenarios", "echo-text"]
    command += ["--kinds", "aiohttp,function", "--json", str(output)]
    result = subprocess.run(
        command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    for row in ("raw aiohttp", "aioendpoints function view", "server CPU per message"):
        assert row in result.stdout
    figures = json.loads(output.read_text())["figures"]["echo-text"]
    assert set(figures) == {"aiohttp", "function"}
    for runs in figures.values():
        (run,) = runs
        assert run["messages"] == QUICK.connections * QUICK.messages
        assert {"cpu_us", "p50_us", "p99_us", "server_busy", "client_busy"} <= set(run)


@pytest.mark.slow
def test_quick_fanout_reports_cpu_time_and_memory_per_member(tmp_path: Path) -> None:
    """`python -m bench --quick --scenarios fanout` publishes to every member of both kinds."""
    output = tmp_path / "figures.json"
    command = [sys.executable, "-m", "bench", "--quick", "--scenarios", "fanout"]
    command += ["--kinds", "aiohttp,function", "--json", str(output)]
    result = subprocess.run(
        command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "server CPU per recipient" in result.stdout
    figures = json.loads(output.read_text())["figures"]["fanout"]
    assert set(figures) == {"aiohttp", "function"}
    for runs in figures.values():
        (run,) = runs
        assert run["messages"] == QUICK.fanout_members * QUICK.fanout_rounds
        assert {"cpu_us", "time_to_all_ms", "kib_per_member"} <= set(run)


def test_client_frames_are_masked_and_unmask_to_the_payload() -> None:
    """A client frame carries the mask bit and its payload XOR the mask key."""
    payload = bytes(range(200))
    frame = masked_frame(0x2, payload, mask=b"\x01\x02\x03\x04")
    assert frame[:4] == bytes((0x82, 0x80 | 126)) + (200).to_bytes(2, "big")
    key, masked = frame[4:8], frame[8:]
    assert bytes(b ^ key[i % 4] for i, b in enumerate(masked)) == payload


def test_a_scenario_name_cannot_be_registered_twice() -> None:
    """Registering a second scenario under a taken name raises ValueError naming it."""
    existing = next(iter(load_scenarios().values()))
    duplicate = Scenario(existing.name, "again", existing.metrics, existing.run)
    with pytest.raises(ValueError, match=existing.name):
        register(duplicate)


@pytest.mark.slow
def test_typed_dispatch_bench_runs_every_variant(tmp_path: Path) -> None:
    """`python -m bench.typed_dispatch --quick` times each dispatcher on the same messages."""

    output = tmp_path / "typed.json"
    command = [sys.executable, "-m", "bench.typed_dispatch", "--quick", "--json", str(output)]
    result = subprocess.run(
        command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr
    figures = json.loads(output.read_text())["figures"]
    assert set(figures) == set(typed_dispatch.VARIANTS)
    assert all(value > 0 for value in figures.values())


def test_typed_dispatchers_agree_on_what_they_handle() -> None:
    """Each variant hands the same three messages to a handler, and the checked ones refuse
    a wrong field type."""
    for name, make in typed_dispatch.VARIANTS.items():
        dispatch = make()
        for raw in typed_dispatch.MESSAGES:
            dispatch(raw)
        assert len(typed_dispatch.handled) == 3, name
        typed_dispatch.handled.clear()
        if name != "orjson-if-unchecked":
            # msgspec's and pydantic's errors are ValueErrors too.
            with pytest.raises(ValueError, match=r"bad move|Expected `float`|valid number"):
                dispatch(b'{"type": "move", "to": {"x": "far", "y": 0}, "speed": 1}')
