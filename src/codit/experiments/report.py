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
        f"{config['prompts']} training prompts; alpha {results['cell']['alpha']:g}, beta "
        f"{results['cell']['beta']:g} (the cell above), "
        f"temperature {config['temperature']}; student {results['student']['parameters']:,} "
        f"parameters; {len(results['runs'])} run(s) took {results['seconds']['total']:.0f} s "
        f"in all ({results['seconds']['cpu']:.0f} s of CPU time; {results['machine']['cpus']} CPUs, "
        f"{results['machine']['torch_threads']} torch threads, load average "
        f"{results['machine']['load_average_1min_at_end']} at the end).",
    ]
    if len(results["grid"]) > 1:
        lines += ["", *grid_table(results)]
    if results.get("token_shift"):
        lines += ["", *shift_table(results["token_shift"])]
    return "\n".join(lines)


def grid_table(results: dict[str, Any]) -> list[str]:
    """One row per (alpha, beta) cell: its teacher data and, where trained, its students."""
    m, p = "instruction_level_strict", "prompt_level_strict"
    direct = results["teacher_data"]["direct"]["summary"]
    students = results["arms"]["direct"]["summary"]
    lines = [
        "Grid: each cell's CoDIT teacher data (mean over its datasets: instruction-level strict "
        "IFEval accuracy of the training answers, their mean length in tokens, distinct-2) and "
        "the students trained on it (IFEval strict accuracy in percent, mean [95% t-interval "
        "over seeds], and the paired difference to the direct students).",
        "",
        "| alpha | beta | data: instr.-level strict | data: mean tokens | data: distinct-2 "
        "| student: instr.-level strict | student: prompt-level strict "
        "| student - direct (instr.-level, paired) |",
        "|---|---|---|---|---|---|---|---|",
        f"| direct | | {100 * direct[m]['mean']:.1f} | {direct['mean_completion_tokens']['mean']:.1f} "
        f"| {direct['distinct_2']['mean']:.3f} | {cell(students[m])} | {cell(students[p])} | |",
    ]
    for c in results["grid"]:
        t = c["teacher_data"]["summary"]
        if c["students"]:
            trained = f"{cell(c['students']['summary'][m])} | {cell(c['students']['summary'][p])}"
            diff = cell(c["difference"][m], signed=True)
        else:
            trained, diff = "not trained | not trained", ""
        lines.append(
            f"| {c['alpha']:g} | {c['beta']:g} | {100 * t[m]['mean']:.1f} "
            f"| {t['mean_completion_tokens']['mean']:.1f} | {t['distinct_2']['mean']:.3f} "
            f"| {trained} | {diff} |"
        )
    return lines


def shift_table(shift: dict[str, Any]) -> list[str]:
    """The tokens CoDIT boosts and suppresses most, relative to direct decoding."""
    lines = [
        f"What the contrast changes (alpha {shift['alpha']:g}, beta {shift['beta']:g}; "
        f"{shift['positions']:,} positions of {shift['responses']:,} CoDIT responses, "
        "teacher-forced): mean probability per step that CoDIT adds to or takes from a token "
        "compared with the instruct model alone (q - p, percentage points), and how often the "
        "token occurs per 1000 tokens of the direct and the CoDIT data.",
        "",
        "| | token | q - p | p (direct) | q (CoDIT) | per 1000, direct data | per 1000, CoDIT data |",
        "|---|---|---|---|---|---|---|",
    ]
    for kind in ("boosted", "suppressed"):
        for r in shift[kind]:
            lines.append(
                f"| {kind} | `{r['token']!r}` | {100 * r['mean_shift']:+.2f} | "
                f"{100 * r['mean_p']:.2f} | {100 * r['mean_q']:.2f} | "
                f"{r['per_1000_direct']:.1f} | {r['per_1000_codit']:.1f} |"
            )
    return lines


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
    if len(results["grid"]) > 1:
        heat_map(results, path.with_name("grid.png"))
    return path


def heat_map(results: dict[str, Any], path: Path) -> Path:
    """Heat maps over (alpha, beta): teacher data accuracy, distinct-2, student accuracy (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m = "instruction_level_strict"
    alphas = sorted({c["alpha"] for c in results["grid"]}, reverse=True)
    betas = sorted({c["beta"] for c in results["grid"]})
    panels = [
        (
            "teacher data, instr.-level strict (%)",
            lambda c: 100 * c["teacher_data"]["summary"][m]["mean"],
        ),
        ("teacher data, distinct-2", lambda c: c["teacher_data"]["summary"]["distinct_2"]["mean"]),
        (
            "student, instr.-level strict (%)",
            lambda c: 100 * c["students"]["summary"][m]["mean"] if c["students"] else None,
        ),
    ]
    direct = {
        0: 100 * results["teacher_data"]["direct"]["summary"][m]["mean"],
        1: results["teacher_data"]["direct"]["summary"]["distinct_2"]["mean"],
        2: 100 * results["arms"]["direct"]["summary"][m]["mean"],
    }
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.8))
    for k, (ax, (title, value)) in enumerate(zip(axes, panels, strict=True)):
        grid = [[float("nan")] * len(betas) for _ in alphas]
        for c in results["grid"]:
            v = value(c)
            if v is not None:
                grid[alphas.index(c["alpha"])][betas.index(c["beta"])] = v
        # one colour scale for the cells and the direct value, so "better than direct" shows
        seen = [v for row in grid for v in row if v == v] + [direct[k]]
        image = ax.imshow(grid, cmap="viridis", aspect="auto", vmin=min(seen), vmax=max(seen))
        for i in range(len(alphas)):
            for j in range(len(betas)):
                v = grid[i][j]
                text = "-" if v != v else (f"{v:.1f}" if k != 1 else f"{v:.3f}")
                light = v != v or image.norm(v) > 0.6  # dark text on the light colours
                color = "black" if light else "white"
                ax.text(j, i, text, ha="center", va="center", color=color, fontsize=9)
        ax.set_xticks(range(len(betas)), [f"{b:g}" for b in betas])
        ax.set_yticks(range(len(alphas)), [f"{a:g}" for a in alphas])
        ax.set_xlabel("beta")
        ax.set_ylabel("alpha")
        direct_text = f"{direct[k]:.1f}" if k != 1 else f"{direct[k]:.3f}"
        ax.set_title(f"{title}\ndirect: {direct_text}", fontsize=9)
        fig.colorbar(image, ax=ax, shrink=0.8)
    fig.suptitle(
        f"CoDIT alpha x beta grid in miniature ({len(results['seeds'])} seeds; '-': not trained)",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
