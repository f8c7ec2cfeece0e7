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
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from codit.errors import ConfigError
from codit.experiments.coin_results import ARMS, build_results, summarize
from codit.experiments.coin_stages import evaluate_model, test_set, train_arm, training_pairs
from codit.experiments.coin_tasks import TASKS
from codit.experiments.rundir import (
    close_run,
    machine_problems,
    open_run,
    stop_checking,
    tiny_build_facts,
    torch_threads,
    write_results,
)

__all__ = ["ARMS", "QUICK", "CoinExperimentConfig", "quick_config", "run", "summarize"]

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class CoinExperimentConfig:
    """Every knob of ``codit experiment coin``. Fields become flags."""

    output: str = field(
        default="runs/coin-mini", metadata={"help": "run directory; a rerun resumes it"}
    )
    model: str = field(
        default="tiny-instruct",
        metadata={"help": "instruct model to continue tuning (a tiny pair's instruct model)"},
    )
    tasks: str = field(
        default=",".join(TASKS), metadata={"help": f"comma list of toy tasks ({', '.join(TASKS)})"}
    )
    train_per_task: int = field(default=200, metadata={"help": "training pairs per task"})
    test_per_task: int = field(
        default=40, metadata={"help": "held-out instances per task (each asked 6 x 5 ways)"}
    )
    seeds: int = field(
        default=3, metadata={"help": "repetitions (training data and fine-tuning), seeds 0..N-1"}
    )
    epochs: float = field(default=3.0, metadata={"help": "passes over the training pairs"})
    lr: float = field(default=1e-3, metadata={"help": "peak learning rate (full fine-tuning)"})
    batch_size: int = field(default=16, metadata={"help": "pairs per step (2x sequences)"})
    temperature: float = field(
        default=0.05, metadata={"help": "InfoNCE temperature (the authors' 0.05)"}
    )
    max_ratio: float = field(
        default=1000.0, metadata={"help": "cap on the contrastive weight L_gen / L_ctr"}
    )
    max_new_tokens: int = field(
        default=4, metadata={"help": "answer tokens decoded (greedy) at evaluation"}
    )
    eval_batch_size: int = field(
        default=64, metadata={"help": "rows decoded at once at evaluation"}
    )
    device: str = field(
        default="auto", metadata={"help": "auto, cpu or cuda for training and evaluation"}
    )
    threads: int = field(
        default=1,
        metadata={
            "help": "torch CPU threads; 1 is fastest for the tiny model on a busy machine, 0 = torch's default"
        },
    )

    @property
    def task_names(self) -> list[str]:
        return [t.strip() for t in self.tasks.split(",") if t.strip()]

    def __post_init__(self) -> None:
        problems = []
        for name in (
            "train_per_task",
            "test_per_task",
            "seeds",
            "batch_size",
            "max_new_tokens",
            "eval_batch_size",
        ):
            if getattr(self, name) < 1:
                problems.append(
                    f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}"
                )
        if self.batch_size < 2:
            problems.append(
                f"--batch-size must be >= 2 (InfoNCE needs negatives in the batch), got {self.batch_size}"
            )
        unknown = [t for t in self.task_names if t not in TASKS]
        if unknown or not self.task_names:
            problems.append(f"--tasks must name some of {', '.join(TASKS)}; got {self.tasks!r}")
        if self.epochs <= 0:
            problems.append(f"--epochs must be > 0, got {self.epochs}")
        if not 0 < self.lr < 1:
            problems.append(f"--lr must be in (0, 1), got {self.lr}")
        if self.temperature <= 0:
            problems.append(f"--temperature must be > 0, got {self.temperature}")
        if self.max_ratio <= 0:
            problems.append(f"--max-ratio must be > 0, got {self.max_ratio}")
        problems += machine_problems(self.threads, self.device)
        if problems:
            raise ConfigError(problems)


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
