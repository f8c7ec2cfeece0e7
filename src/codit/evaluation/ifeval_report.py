"""IFEval's report: a plain-text table, a per-instruction bar chart, and the files of a run.

``write_report`` writes ``metrics.json`` (the numbers and how the run was made),
``verdicts.jsonl`` (one line per prompt) and ``per_instruction.png``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from codit.evaluation.ifeval_scoring import Verdict
from codit.io.atomic import write_lines, write_text


def format_table(metrics: dict[str, Any]) -> str:
    """The report as a plain-text table: the four accuracies, then one row per instruction."""
    lines = [
        f"{'':46} {'strict':>8} {'loose':>8}",
        f"{'prompt-level accuracy':46} {metrics['prompt_level_strict']:8.4f} {metrics['prompt_level_loose']:8.4f}",
        f"{'instruction-level accuracy':46} {metrics['instruction_level_strict']:8.4f} {metrics['instruction_level_loose']:8.4f}",
        "",
        f"{'instruction':46} {'strict':>8} {'loose':>8} {'n':>5}",
    ]
    for i, acc in metrics["per_instruction"].items():
        lines.append(
            f"{i:46} {acc:8.4f} {metrics['per_instruction_loose'][i]:8.4f} {metrics['per_instruction_count'][i]:5d}"
        )
    lines.append("")
    lines.append(f"{metrics['num_prompts']} prompts, {metrics['num_instructions']} instructions")
    if metrics["missing_responses"]:
        lines.append(
            f"{metrics['missing_responses']} prompts had no response and count as failing every instruction"
        )
    return "\n".join(lines)


def plot_per_instruction(metrics: dict[str, Any], path: Path, title: str = "IFEval") -> Path:
    """A horizontal bar chart of strict and loose accuracy per instruction id (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ids = list(metrics["per_instruction"])
    strict = [metrics["per_instruction"][i] for i in ids]
    loose = [metrics["per_instruction_loose"][i] for i in ids]
    fig, ax = plt.subplots(figsize=(9, 0.32 * len(ids) + 1.6))
    rows = range(len(ids))
    ax.barh([r - 0.2 for r in rows], strict, height=0.4, label="strict", color="#3b6ea8")
    ax.barh([r + 0.2 for r in rows], loose, height=0.4, label="loose", color="#a8c6e8")
    ax.set_yticks(
        list(rows), [f"{i} (n={metrics['per_instruction_count'][i]})" for i in ids], fontsize=8
    )
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("accuracy")
    ax.set_title(
        f"{title}: prompt-level strict {metrics['prompt_level_strict']:.3f}, "
        f"instruction-level strict {metrics['instruction_level_strict']:.3f}",
        fontsize=10,
    )
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def write_report(
    verdicts: list[Verdict], metrics: dict[str, Any], output: Path, run: dict[str, Any]
) -> dict[str, Path]:
    """Write ``metrics.json`` (with ``run``: config and version), ``verdicts.jsonl`` and the PNG."""
    output.mkdir(parents=True, exist_ok=True)
    paths = {
        "metrics": output / "metrics.json",
        "verdicts": output / "verdicts.jsonl",
        "plot": output / "per_instruction.png",
    }
    write_text(paths["metrics"], json.dumps({**metrics, "run": run}, indent=2) + "\n")
    write_lines(paths["verdicts"], [v.to_dict() for v in verdicts])
    plot_per_instruction(metrics, paths["plot"])
    return paths
