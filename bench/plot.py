"""The plot of ``python -m bench --callgrind --plot PATH``: instructions per echoed message.

Also ``python -m bench.plot FIGURES.json PATH`` redraws it from the figures that
``python -m bench --callgrind --json FIGURES.json`` wrote. It needs matplotlib (in the
``bench`` extra).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

__all__ = ["plot_instructions"]

#: The kinds in the plot, in its order, and their legend.
PLOTTED = {
    "function": "aioendpoints (function view)",
    "endpoint": "aioendpoints (class endpoint)",
    "aiohttp": "raw aiohttp",
    "websockets": "python-websockets",
    "starlette": "Starlette + uvicorn",
}
ECHOES = {"echo-text": "text echo", "echo-bytes": "16 KiB binary echo", "echo-json": "JSON echo"}
DEPLOYED = "@deployed"


def _figure(figures: dict[str, dict[str, float]], kind: str, echo: str) -> float | None:
    """The deployed figure where there is one (aiohttp kinds), else the only one (peers)."""
    kind_figures = figures.get(kind, {})
    return kind_figures.get(echo + DEPLOYED, kind_figures.get(echo))


def plot_instructions(figures: dict[str, dict[str, float]], path: Path) -> None:
    """Draw grouped bars: thousands of instructions per message, per echo and kind."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = [kind for kind in PLOTTED if any(_figure(figures, kind, e) for e in ECHOES)]
    echoes = [echo for echo in ECHOES if any(_figure(figures, k, echo) for k in kinds)]
    width = 0.8 / max(len(kinds), 1)
    fig, axes = plt.subplots(figsize=(8, 4.2), dpi=100)
    for index, kind in enumerate(kinds):
        values = [(_figure(figures, kind, echo) or 0.0) / 1000 for echo in echoes]
        positions = [
            number + (index - (len(kinds) - 1) / 2) * width for number in range(len(echoes))
        ]
        bars = axes.bar(positions, values, width, label=PLOTTED[kind])
        axes.bar_label(bars, fmt="%.0f", fontsize=7, padding=2)
    axes.set_xticks(range(len(echoes)), [ECHOES[echo] for echo in echoes])
    axes.set_ylabel("thousand instructions per message")
    axes.set_title("Server cost of one echoed message (callgrind; lower is better)")
    axes.legend(fontsize=8)
    axes.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -m bench.plot FIGURES.json OUTPUT.png")
    data = json.loads(Path(sys.argv[1]).read_text())
    plot_instructions(data["callgrind"], Path(sys.argv[2]))
