"""The ``results.json`` of ``codit experiment coin``: accuracy and spread per level and arm.

``summarize`` turns one model's verdicts into accuracy and spread per perturbation level;
``build_results`` puts every seed and arm together with 95% Student-t intervals over seeds and
the paired differences (with - without the CoIN term). ``coin_report`` draws them.
"""

from __future__ import annotations

import statistics
from typing import TYPE_CHECKING, Any

from codit.experiments.coin_tasks import LEVELS, PERTURBED
from codit.experiments.rundir import provenance
from codit.experiments.stats import INTERVAL

if TYPE_CHECKING:
    from codit.experiments.coin_mini import CoinExperimentConfig

ARMS = ("baseline", "coin")


def summarize(hits: dict[str, dict[str, list[list[bool]]]]) -> dict[str, Any]:
    """Accuracy and spread per level, from per-task, per-level, per-wording verdicts.

    For each task and level: the accuracy under each wording, their mean and their population
    standard deviation (PromptBench's spread over instructions). Per level: those means and
    deviations averaged over tasks. ``perturbed`` averages the four perturbed levels.
    """
    per_task: dict[str, dict[str, dict[str, Any]]] = {}
    for task, verdicts in hits.items():
        per_task[task] = {}
        for level, wordings in verdicts.items():
            accuracies = [sum(v) / len(v) for v in wordings]
            per_task[task][level] = {
                "accuracies": accuracies,
                "mean": statistics.fmean(accuracies),
                "spread": statistics.pstdev(accuracies),
            }
    levels: dict[str, dict[str, float]] = {
        level: {
            key: statistics.fmean(per_task[t][level][key] for t in per_task)
            for key in ("mean", "spread")
        }
        for level in LEVELS
    }
    levels["perturbed"] = {
        key: statistics.fmean(levels[lv][key] for lv in PERTURBED) for key in ("mean", "spread")
    }
    return {"levels": levels, "tasks": per_task}


def build_results(
    config: CoinExperimentConfig,
    scores: dict[tuple[str, int], dict[str, Any]],
    before: dict[str, Any],
    seeds: list[int],
    build: dict[str, Any],
    n_test: int,
    runs: list[dict[str, Any]],
) -> dict[str, Any]:
    from codit import __version__
    from codit.config import to_dict
    from codit.experiments.stats import mean_ci, paired_ci

    levels = [*LEVELS, "perturbed"]
    arms = {}
    for arm in ARMS:
        rows = [
            {
                "seed": s,
                **{
                    f"{lv}_{k}": scores[arm, s]["levels"][lv][k]
                    for lv in levels
                    for k in ("mean", "spread")
                },
            }
            for s in seeds
        ]
        arms[arm] = {
            "per_seed": rows,
            "summary": {
                key: mean_ci([r[key] for r in rows]).to_dict() for key in rows[0] if key != "seed"
            },
        }
    difference = {
        f"{lv}_{k}": paired_ci(
            [scores["coin", s]["levels"][lv][k] for s in seeds],
            [scores["baseline", s]["levels"][lv][k] for s in seeds],
        ).to_dict()
        for lv in levels
        for k in ("mean", "spread")
    }
    per_task = {
        arm: {
            t: {
                lv: statistics.fmean(scores[arm, s]["tasks"][t][lv]["mean"] for s in seeds)
                for lv in LEVELS
            }
            for t in config.task_names
        }
        for arm in ARMS
    }
    return {
        "experiment": "coin-mini",
        "codit_version": __version__,
        "config": to_dict(config),
        "interval": INTERVAL,
        "levels": levels,
        "seeds": seeds,
        "arms": arms,
        "difference": difference,
        "per_task": per_task,
        "before": before["levels"],
        "model": {"name": config.model, "build": build},
        "test": {"instances": n_test, "wordings_per_task": 6, "asks": n_test * 6 * len(LEVELS)},
        **provenance(runs),  # machine, and the seconds of every run into this directory
    }
