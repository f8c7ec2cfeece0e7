"""The Markdown table and the PNG of ``codit experiment coin``'s ``results.json``.

Both read only the results dictionary. Accuracy and spread are percentages; the spread is the
standard deviation of the accuracy over a task's six test wordings, averaged over tasks (lower
is more robust). Intervals are over seeds and absent with a single seed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from codit.experiments.report import bars, cell

LEVEL_LABELS = {
    "clean": "clean",
    "char": "character",
    "word": "word",
    "sentence": "sentence",
    "semantic": "semantic",
    "perturbed": "4 perturbed levels",
}
ARM_LABELS = {"baseline": "without CoIN term", "coin": "with CoIN term"}
COLORS = {"baseline": "#8c8c8c", "coin": "#3b6ea8"}


def table(results: dict[str, Any]) -> str:
    """Accuracy and spread per level for both arms, their paired differences, and the details."""
    levels = results["levels"]
    seeds = len(results["seeds"])
    head = "| | " + " | ".join(LEVEL_LABELS[lv] for lv in levels) + " |"
    rule = "|---|" + "---|" * len(levels)
    lines = [
        f"# CoIN in miniature: {results['model']['name']}, {len(results['per_task']['coin'])} toy tasks, "
        f"{results['test']['instances']} held-out instances x 6 unseen wordings x 5 levels, {seeds} seeds",
        "",
        f"Exact-match accuracy in percent, mean over seeds with a {results['interval']}.",
        "",
        head,
        rule,
    ]
    for key, title in (
        ("mean", "accuracy"),
        ("spread", "spread over wordings (sd, lower is better)"),
    ):
        lines.append(f"| **{title}** |" + " |" * len(levels))
        for arm, label in ARM_LABELS.items():
            summary = results["arms"][arm]["summary"]
            lines.append(
                f"| {label} | " + " | ".join(cell(summary[f"{lv}_{key}"]) for lv in levels) + " |"
            )
        diff = results["difference"]
        lines.append(
            "| CoIN - baseline (paired by seed) | "
            + " | ".join(cell(diff[f"{lv}_{key}"], signed=True) for lv in levels)
            + " |"
        )
        before = results["before"]
        lines.append(
            "| (starting model, not tuned) | "
            + " | ".join(f"{100 * before[lv][key]:.1f}" for lv in levels)
            + " |"
        )
    task_levels = [lv for lv in levels if lv != "perturbed"]
    lines += [
        "",
        "Accuracy per task (mean over seeds and wordings):",
        "",
        "| task | arm | " + " | ".join(LEVEL_LABELS[lv] for lv in task_levels) + " |",
        "|---|---|" + "---|" * len(task_levels),
    ]
    for task in results["per_task"]["coin"]:
        for arm, label in ARM_LABELS.items():
            row = results["per_task"][arm][task]
            lines.append(
                f"| {task} | {label} | "
                + " | ".join(f"{100 * row[lv]:.1f}" for lv in task_levels)
                + " |"
            )
    config, machine = results["config"], results["machine"]
    lines += [
        "",
        f"{config['train_per_task']} training pairs per task, {config['epochs']} epochs, lr {config['lr']}, "
        f"batch {config['batch_size']} pairs, temperature {config['temperature']}; "
        f"{len(results['runs'])} run(s) took {results['seconds']['total']:.0f} s in all "
        f"({results['seconds']['cpu']:.0f} s of CPU time; {machine['cpus']} CPUs, {machine['torch_threads']} "
        f"torch threads, load average {machine['load_average_1min_at_end']} at the end).",
    ]
    return "\n".join(lines)


def plot(results: dict[str, Any], path: Path) -> Path:
    """Two panels, accuracy and spread per level: bars per arm, 95% whiskers, a dot per seed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = results["levels"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.4))
    width = 0.36
    for ax, key, title in (
        (axes[0], "mean", "accuracy (%)"),
        (axes[1], "spread", "spread over wordings (sd, %)"),
    ):
        for k, arm in enumerate(ARM_LABELS):
            xs = [i + (k - 0.5) * width for i in range(len(levels))]
            bars(
                ax,
                xs,
                width,
                results["arms"][arm],
                [f"{lv}_{key}" for lv in levels],
                COLORS[arm],
                ARM_LABELS[arm],
            )
        ax.set_xticks(
            range(len(levels)),
            [LEVEL_LABELS[lv].replace(" perturbed levels", " perturbed") for lv in levels],
            fontsize=8,
        )
        ax.set_ylabel(title)
        if key == "mean":
            ax.set_ylim(0, 100)
            ax.axhline(50, color="#c0504d", linestyle="dashed", linewidth=1, label="chance (50%)")
    axes[0].legend(fontsize=8, loc="lower left")
    fig.suptitle(
        f"CoIN in miniature: {len(results['seeds'])} seeds, mean and 95% t-interval", fontsize=10
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
