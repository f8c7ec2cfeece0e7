"""CoIN's experiment in miniature: does the contrastive term make a model robust to rewordings?

Yan et al., "Contrastive Instruction Tuning" (arXiv 2402.11138), continue instruction tuning of
an instruct model on pairs (instruction, paraphrased instruction) of the same instance, once
with the generation loss alone and once adding the InfoNCE term that pulls the two hidden
states together, then score both models on tasks asked with unseen, perturbed instructions:
accuracy, and its spread over the instructions. ``run`` replays that on the tiny pair:

1. data: the toy benchmark of ``coin_tasks`` (five yes/no-style tasks); for each seed, training
   pairs of a training wording and its paraphrase (character, word, sentence or semantic
   level), grouped by wording so that a row's batch neighbour is a hard negative;
2. training: ``codit train coin`` on a copy of tiny-instruct, with the contrastive term off
   (``baseline``: the same data, order and steps) and on (``coin``);
3. evaluation: greedy answers to held-out instances under six unseen wordings per task, each
   clean and at the four perturbation levels; exact match on the first word;
4. report: per level, accuracy averaged over tasks and instructions and its spread (standard
   deviation over the six instructions, averaged over tasks), means over seeds with 95%
   t-intervals, paired differences, ``results.json``, ``results.md`` and ``results.png``.

Stages leave their files in the run directory and are skipped on a rerun; rerunning with other
settings is refused. The stages are in ``coin_stages.py``, the aggregation into ``results.json``
in ``coin_results.py``; this module holds the settings and ``run``. It logs; the CLI
(``codit experiment coin``) prints.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from codit.experiments.coin_results import ARMS, build_results, summarize
from codit.experiments.coin_stages import evaluate_model, test_set, train_arm, training_pairs
from codit.experiments.coin_tasks import TASKS
from codit.experiments.rundir import (
    close_run,
    open_run,
    stop_checking,
    tiny_build_facts,
    torch_threads,
    write_results,
)
from codit.models.loading import device_problems
from codit.settings import check, setting

__all__ = ["ARMS", "QUICK", "CoinExperimentConfig", "quick_config", "run", "summarize"]

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class CoinExperimentConfig:
    """Every knob of ``codit experiment coin``. Fields become flags."""

    output: str = setting("runs/coin-mini", "run directory; a rerun resumes it")
    model: str = setting(
        "tiny-instruct", "instruct model to continue tuning (a tiny pair's instruct model)"
    )
    tasks: str = setting(",".join(TASKS), f"comma list of toy tasks ({', '.join(TASKS)})")
    train_per_task: int = setting(200, "training pairs per task", ge=1)
    test_per_task: int = setting(40, "held-out instances per task (each asked 6 x 5 ways)", ge=1)
    seeds: int = setting(3, "repetitions (training data and fine-tuning), seeds 0..N-1", ge=1)
    epochs: float = setting(3.0, "passes over the training pairs", gt=0)
    lr: float = setting(1e-3, "peak learning rate (full fine-tuning)", gt=0, lt=1)
    batch_size: int = setting(
        16, "pairs per step, 2x sequences (InfoNCE needs negatives in the batch)", ge=2
    )
    temperature: float = setting(0.05, "InfoNCE temperature (the authors' 0.05)", gt=0)
    max_ratio: float = setting(1000.0, "cap on the contrastive weight L_gen / L_ctr", gt=0)
    max_new_tokens: int = setting(4, "answer tokens decoded (greedy) at evaluation", ge=1)
    eval_batch_size: int = setting(64, "rows decoded at once at evaluation", ge=1)
    device: str = setting("auto", "auto, cpu or cuda for training and evaluation")
    threads: int = setting(
        1,
        "torch CPU threads; 1 is fastest for the tiny model on a busy machine, 0 = torch's default",
        ge=0,
    )

    @property
    def task_names(self) -> list[str]:
        return [t.strip() for t in self.tasks.split(",") if t.strip()]

    def __post_init__(self) -> None:
        problems = device_problems(self.device, None)
        unknown = [t for t in self.task_names if t not in TASKS]
        if unknown or not self.task_names:
            problems.append(f"--tasks must name some of {', '.join(TASKS)}; got {self.tasks!r}")
        check(self, problems)


# ``--quick``: every stage in about a minute; the numbers mean nothing.
QUICK: dict[str, Any] = {
    "output": "runs/coin-mini-quick",
    "train_per_task": 24,
    "test_per_task": 6,
    "seeds": 2,
    "epochs": 1.0,
}


def quick_config(**overrides: Any) -> CoinExperimentConfig:
    """The ``--quick`` preset, with ``overrides`` on top."""
    return replace(CoinExperimentConfig(**QUICK), **overrides)


def run(
    config: CoinExperimentConfig, on_progress: Progress | None = None, bars: bool = False
) -> dict[str, Any]:
    """Run (or resume) the experiment and write ``results.json``, ``results.md``, ``results.png``.

    Args:
        config: the settings.
        on_progress: called with (stage, done, total) as stages and their items advance.
        bars: let the trainer show its own progress bar.

    Returns:
        The content of ``results.json``.
    """
    from codit.config import to_dict
    from codit.models.loading import resolve_model_path
    from codit.tiny.world import make_world

    report = stop_checking(on_progress or (lambda stage, done, total: None))
    started, cpu_started = time.time(), time.process_time()
    seconds: dict[str, float] = {"data": 0.0, "training": 0.0, "evaluation": 0.0}
    out = Path(config.output)
    tasks = [TASKS[name] for name in config.task_names]

    with torch_threads(config.threads), contextlib.ExitStack() as stack:
        model = resolve_model_path(config.model)
        build = tiny_build_facts(config.model)
        world = make_world(build["seed"])
        settings = {
            k: v
            for k, v in to_dict(config).items()
            if k not in ("output", "seeds", "eval_batch_size", "device", "threads")
        }
        run = stack.enter_context(open_run(out, settings, config, config.seeds))
        manifest = run.manifest
        seeds = list(range(config.seeds))

        clock = time.time()
        test = test_set(out / "test.jsonl", world, tasks, config.test_per_task)
        seconds["data"] += time.time() - clock

        before = evaluate_model(
            config, model, test, out / "before", "evaluate the starting model", report
        )
        scores: dict[tuple[str, int], dict[str, Any]] = {}
        for seed in seeds:
            clock = time.time()
            data = training_pairs(
                out / "data" / f"pairs-seed{seed}.jsonl",
                world,
                tasks,
                config.train_per_task,
                seed,
                {row["key"] for row in test},
            )
            seconds["data"] += time.time() - clock
            for arm in ARMS:
                where = out / "models" / f"{arm}-seed{seed}"
                clock = time.time()
                report(f"train {arm} seed {seed}", 0, 1)
                train_arm(config, model, data, where / "model", arm, seed, bars)
                report(f"train {arm} seed {seed}", 1, 1)
                seconds["training"] += time.time() - clock
                clock = time.time()
                scores[arm, seed] = evaluate_model(
                    config, str(where / "model"), test, where, f"evaluate {arm} seed {seed}", report
                )
                seconds["evaluation"] += time.time() - clock

        seconds["total"] = time.time() - started
        seconds["cpu"] = time.process_time() - cpu_started
        close_run(run, seconds)
        results = build_results(config, scores, before, seeds, build, len(test), manifest["runs"])
        from codit.experiments.coin_report import plot, table

        write_results(out, results, table, plot)
    return results
