"""The PNGs of ``codit compare``: the two length distributions and the per-instruction pass shares.

Drawn with matplotlib's Agg backend (no display needed); each function writes one file and
returns its path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

COLORS = ("#3b6ea8", "#d9822b")


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_lengths(lengths: dict[str, list[int]], unit: str, path: Path, bins: int = 30) -> Path:
    """Overlaid histograms of the two sides' response lengths, on shared bins."""
    plt = _pyplot()
    values = [v for side in lengths.values() for v in side]
    low, high = min(values, default=0), max(values, default=1)
    width = max((high - low) / bins, 1)
    edges = [low + i * width for i in range(bins + 1)]
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for (label, side), color in zip(lengths.items(), COLORS, strict=False):
        mean = sum(side) / len(side) if side else 0
        ax.hist(side, bins=edges, alpha=0.55, color=color, label=f"{label} (mean {mean:.1f})")
    ax.set_xlabel(f"response length ({unit})")
    ax.set_ylabel("responses")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_checks(checks: dict[str, Any], labels: list[str], path: Path) -> Path:
    """Grouped horizontal bars: the share of responses passing each instruction, per side."""
    plt = _pyplot()
    ids = sorted({i for label in labels for i in checks[label]["per_instruction"]})
    fig, ax = plt.subplots(figsize=(8, 0.34 * len(ids) + 1.6))
    rows = range(len(ids))
    for k, (label, color) in enumerate(zip(labels, COLORS, strict=True)):
        rates = [checks[label]["per_instruction"].get(i, 0.0) for i in ids]
        offset = -0.2 if k == 0 else 0.2
        ax.barh(
            [r + offset for r in rows],
            rates,
            height=0.4,
            color=color,
            label=f"{label} (prompt-level {checks[label]['prompt_level']:.2f})",
        )
    counts = checks[labels[0]]["per_instruction_count"]
    ax.set_yticks(list(rows), [f"{i} (n={counts.get(i, 0)})" for i in ids], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of responses that follow the instruction (IFEval strict)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path
