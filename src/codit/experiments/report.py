"""The Markdown table and the PNG of an experiment's ``results.json``.

Both read only the results dictionary, so a report can be redrawn from the JSON alone. Numbers
are percentages with one decimal; an interval is shown as ``[low, high]`` and is absent with a
single seed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

LABELS = {
    "prompt_level_strict": "prompt-level strict",
    "instruction_level_strict": "instruction-level strict",
    "prompt_level_loose": "prompt-level loose",
    "instruction_level_loose": "instruction-level loose",
}
ARM_LABELS = {"direct": "direct responses", "codit": "CoDIT responses"}
COLORS = {"direct": "#8c8c8c", "codit": "#3b6ea8"}


def cell(stat: dict[str, Any], signed: bool = False) -> str:
    """``mean [low, high]`` in percent (``mean`` alone when there is no interval)."""
    sign = "+" if signed else ""
    text = f"{100 * stat['mean']:{sign}.1f}"
    if stat.get("ci_low") is not None:
        text += f" [{100 * stat['ci_low']:{sign}.1f}, {100 * stat['ci_high']:{sign}.1f}]"
    return text


def table(results: dict[str, Any]) -> str:
    """The student table, the paired difference, the teacher reference and the data table."""
    metrics = results["metrics"]
    seeds = len(results["seeds"])
    head = "| student fine-tuned on | " + " | ".join(LABELS[m] for m in metrics) + " |"
    lines = [
        f"# CoDIT in miniature: {results['student']['architecture']} student, "
        f"{results['heldout']['prompts']} held-out prompts, {seeds} seeds",
        "",
        f"IFEval accuracy in percent, mean over seeds with a {results['interval']}.",
        "",
        head,
        "|---|" + "---|" * len(metrics),
    ]
    for arm, label in ARM_LABELS.items():
        summary = results["arms"][arm]["summary"]
        lines.append(f"| {label} | " + " | ".join(cell(summary[m]) for m in metrics) + " |")
    diff = results["difference"]
    lines.append(
        "| CoDIT - direct (paired by seed) | "
        + " | ".join(cell(diff[m], signed=True) for m in metrics)
        + " |"
    )
    teacher = results["teacher_reference"]
    lines.append(
        "| (teacher itself, greedy) | "
        + " | ".join(f"{100 * teacher[m]:.1f}" for m in metrics)
        + " |"
    )
    lines += [
        "",
        "Teacher data (mean over its datasets): share of the training answers that follow "
        "their own prompt's instructions, and their length.",
        "",
        "| teacher data | prompt-level strict | instruction-level strict | mean tokens | cut at max tokens |",
        "|---|---|---|---|---|",
    ]
    for arm, label in ARM_LABELS.items():
        s = {k: v["mean"] for k, v in results["teacher_data"][arm]["summary"].items()}
        lines.append(
            f"| {label} | {100 * s['prompt_level_strict']:.1f} | {100 * s['instruction_level_strict']:.1f} "
            f"| {s['mean_completion_tokens']:.1f} | {100 * s['cut_at_max_tokens']:.1f}% |"
        )
    per_seed = ", ".join(
        f"seed {d['seed']}: {100 * d['prompt_level_strict']:.1f} -> {100 * c['prompt_level_strict']:.1f}"
        for d, c in zip(
            results["arms"]["direct"]["per_seed"], results["arms"]["codit"]["per_seed"], strict=True
        )
    )
    config = results["config"]
    lines += [
        "",
        f"Per seed, prompt-level strict (direct -> CoDIT): {per_seed}.",
        "",
        f"{config['prompts']} training prompts; alpha {config['alpha']}, beta {config['beta']}, "
        f"temperature {config['temperature']}; student {results['student']['parameters']:,} "
        f"parameters; {len(results['runs'])} run(s) took {results['seconds']['total']:.0f} s "
        f"in all ({results['seconds']['cpu']:.0f} s of CPU time; {results['machine']['cpus']} CPUs, "
        f"{results['machine']['torch_threads']} torch threads, load average "
        f"{results['machine']['load_average_1min_at_end']} at the end).",
    ]
    return "\n".join(lines)


def bars(
    ax: Any,
    xs: list[float],
    width: float,
    arm: dict[str, Any],
    keys: list[str],
    color: str,
    label: str,
) -> None:
    """One arm's bars at ``xs``: the mean of each key over seeds (percent), whiskers to the 95%
    interval when there is one, a black dot per seed."""
    stats = [arm["summary"][key] for key in keys]
    errors = None
    if all(s["ci_low"] is not None for s in stats):
        errors = [
            [100 * (s["mean"] - s["ci_low"]) for s in stats],
            [100 * (s["ci_high"] - s["mean"]) for s in stats],
        ]
    ax.bar(
        xs,
        [100 * s["mean"] for s in stats],
        width,
        yerr=errors,
        capsize=4,
        color=color,
        label=label,
    )
    for x, key in zip(xs, keys, strict=True):
        dots = [100 * row[key] for row in arm["per_seed"]]
        ax.scatter([x] * len(dots), dots, s=12, color="black", zorder=3)


def plot(results: dict[str, Any], path: Path) -> Path:
    """Bars of each arm's mean per metric, 95% interval whiskers, one dot per seed (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = results["metrics"]
    fig, ax = plt.subplots(figsize=(8, 4.6))
    width = 0.36
    for k, arm in enumerate(ARM_LABELS):
        xs = [i + (k - 0.5) * width for i in range(len(metrics))]
        bars(ax, xs, width, results["arms"][arm], metrics, COLORS[arm], ARM_LABELS[arm])
    teacher = results["teacher_reference"]
    for i, m in enumerate(metrics):
        ax.hlines(
            100 * teacher[m],
            i - width,
            i + width,
            colors="#c0504d",
            linestyles="dashed",
            label="teacher (greedy)" if i == 0 else "_nolegend_",
        )
    ax.set_xticks(range(len(metrics)), [LABELS[m] for m in metrics], fontsize=9)
    ax.set_ylabel("accuracy on held-out prompts (%)")
    ax.set_title(
        f"Student fine-tuned on direct vs CoDIT data: {len(results['seeds'])} seeds, "
        "mean and 95% t-interval",
        fontsize=10,
    )
    ax.set_ylim(0, 100)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=3, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
