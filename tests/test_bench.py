"""The benchmark harness runs end to end (its figures are not checked: they are timings)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench import callgrind, typed_dispatch
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


@pytest.mark.slow
def test_quick_scale_and_keepalive_report_every_figure(tmp_path: Path) -> None:
    """The scale and keepalive scenarios run against raw aiohttp and a function view."""
    output = tmp_path / "figures.json"
    command = [sys.executable, "-m", "bench", "--quick", "--scenarios", "scale,keepalive"]
    command += ["--kinds", "aiohttp,function", "--json", str(output)]
    result = subprocess.run(
        command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "handshake time per connection" in result.stdout
    assert "silent peer dropped after" in result.stdout
    figures = json.loads(output.read_text())["figures"]
    for kind in ("aiohttp", "function"):
        (scale,) = figures["scale"][kind]
        assert scale["messages"] == QUICK.scale_connections * QUICK.scale_rounds
        assert {"connect_us", "kib_per_member", "cpu_us"} <= set(scale)
        (keepalive,) = figures["keepalive"][kind]
        assert keepalive["messages"] == QUICK.keepalive_peers
        # Dropped, and not before the peer had half a heartbeat to answer a ping.
        assert keepalive["worst_heartbeats"] >= keepalive["detection_heartbeats"] >= 0.5


def test_callgrind_report_says_which_targets_are_met() -> None:
    """The targets compare the deployed figures when there are any, and say by how much."""
    figures = {
        "aiohttp": {"echo-text": 100.0, "echo-text@deployed": 110.0, "echo-json": 100.0},
        "function": {"echo-text": 120.0, "echo-text@deployed": 112.0, "echo-json": 85.0},
    }
    report = callgrind.targets(figures)
    assert "echo-text   function  1.018x <= 1.05x (as deployed): met" in report
    assert "echo-json   function  0.850x <= 0.80x (bare): MISSED by 6.2%" in report
    table = callgrind.render(figures, ["aiohttp", "function"], ["echo-text"])
    assert "1.200x" in table
    assert "1.018x" in table


def test_plot_draws_a_png_from_the_checked_in_figures(tmp_path: Path) -> None:
    """The plot in the docs comes from figures checked in next to it; redrawing it works."""
    pytest.importorskip("matplotlib", reason="the bench extra draws the plot")
    figures = REPO_ROOT / "docs" / "_static" / "performance-callgrind.json"
    output = tmp_path / "plot.png"
    command = [sys.executable, "-m", "bench.plot", str(figures), str(output)]
    subprocess.run(command, cwd=REPO_ROOT, timeout=60, check=True)
    assert output.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
