"""The ``results.json`` of ``codit experiment codit``: scores per seed, intervals, data quality.

Pure bookkeeping over what the stages (``codit_stages``) left: per-seed scores, means with 95%
Student-t intervals over seeds, the paired difference CoDIT - direct per cell, and what the
teacher's datasets look like. ``codit.experiments.report`` draws the table and the plot.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from codit.experiments.grid import cell_tag, default_cell
from codit.experiments.rundir import provenance
from codit.experiments.stats import INTERVAL

if TYPE_CHECKING:
    from codit.experiments.codit_mini import CoditExperimentConfig

METRICS = (
    "prompt_level_strict",
    "instruction_level_strict",
    "prompt_level_loose",
    "instruction_level_loose",
)


def data_quality(prompts: list[Any], data: dict[tuple[str, int], Path]) -> dict[str, Any]:
    """How well each teacher dataset itself follows its prompts' instructions, its lengths and
    its distinct-2, per arm (``direct`` or a cell's tag): per seed and summarized over seeds."""
    from codit.evaluation.ifeval import evaluate, summarize
    from codit.experiments.grid import distinct_n
    from codit.experiments.stats import mean_ci
    from codit.io.jsonl import iter_records

    per_seed: dict[str, list[dict[str, Any]]] = {}
    for (arm, seed), path in sorted(data.items()):
        records = iter_records(path)
        answers = {r["id"]: r["messages"][-1]["content"] for r in records}
        metrics = summarize(evaluate(prompts, answers))
        per_seed.setdefault(arm, []).append(
            {
                "seed": seed,
                "records": len(records),
                **{m: metrics[m] for m in METRICS},
                "mean_completion_tokens": sum(r["meta"]["completion_tokens"] for r in records)
                / max(1, len(records)),
                "cut_at_max_tokens": sum(r["meta"]["finish_reason"] == "length" for r in records)
                / max(1, len(records)),
                "distinct_2": distinct_n(answers.values(), 2),
            }
        )
    keys = [*METRICS, "mean_completion_tokens", "cut_at_max_tokens", "distinct_2"]
    return {
        arm: {
            "per_seed": rows,
            "summary": {k: mean_ci([r[k] for r in rows]).to_dict() for k in keys},
        }
        for arm, rows in per_seed.items()
    }


def build_results(
    config: CoditExperimentConfig,
    scores: dict[tuple[str, int], dict[str, Any]],
    teacher: dict[str, Any],
    data_quality: dict[str, Any],
    seeds: list[int],
    build: dict[str, Any],
    student: dict[str, Any],
    heldout_path: Path,
    n_heldout: int,
    runs: list[dict[str, Any]],
) -> dict[str, Any]:

    from codit import __version__
    from codit.config import to_dict
    from codit.experiments.stats import mean_ci, paired_ci

    def students(arm: str) -> dict[str, Any]:
        rows = [{"seed": s, **{m: scores[arm, s][m] for m in METRICS}} for s in seeds]
        return {
            "per_seed": rows,
            "summary": {m: mean_ci([r[m] for r in rows]).to_dict() for m in METRICS},
        }

    def versus_direct(arm: str) -> dict[str, Any]:
        return {
            m: paired_ci(
                [scores[arm, s][m] for s in seeds], [scores["direct", s][m] for s in seeds]
            ).to_dict()
            for m in METRICS
        }

    grid_cells = []
    for alpha, beta in config.grid:
        tag = cell_tag(alpha, beta)
        trained = (alpha, beta) in config.student_grid
        grid_cells.append(
            {
                "alpha": alpha,
                "beta": beta,
                "tag": tag,
                "teacher_data": data_quality[tag],
                "students": students(tag) if trained else None,
                "difference": versus_direct(tag) if trained else None,
            }
        )
    # the single-cell view (table, bars): the authors' cell when its students were trained
    main = default_cell(config.student_grid)
    main_tag = cell_tag(*main)
    arms = {"direct": students("direct"), "codit": students(main_tag)}
    difference = versus_direct(main_tag)
    return {
        "experiment": "codit-mini",
        "codit_version": __version__,
        "config": to_dict(config),
        "interval": INTERVAL,
        "metrics": list(METRICS),
        "seeds": seeds,
        "arms": arms,
        "difference": difference,
        "teacher_reference": {m: teacher[m] for m in METRICS},
        "teacher_data": {"direct": data_quality["direct"], "codit": data_quality[main_tag]},
        "cell": {"alpha": main[0], "beta": main[1], "tag": main_tag},
        "grid": grid_cells,
        "teacher": {"instruct": config.instruct, "base": config.base, "build": build},
        "student": student,
        "heldout": {"path": str(heldout_path), "prompts": n_heldout},
        **provenance(runs),  # machine, and the seconds of every run into this directory
    }
