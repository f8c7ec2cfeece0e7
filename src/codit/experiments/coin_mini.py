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
settings is refused. This module logs; the CLI (``codit experiment coin``) prints.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from codit.experiments.coin_tasks import LEVELS, PERTURBED, TASKS, Instance, Task
from codit.experiments.rundir import (
    close_run,
    open_run,
    provenance,
    stop_checking,
    tiny_build_facts,
    torch_threads,
    write_results,
)
from codit.io.atomic import write_json, write_lines
from codit.io.manifest import read_json
from codit.models.loading import device_problems
from codit.settings import check, setting

log = logging.getLogger(__name__)

ARMS = ("baseline", "coin")
INTERVAL = "two-sided 95% Student t-interval over seeds (mean +- t(0.975, S-1) * sd / sqrt(S))"
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
        test = _test_set(out / "test.jsonl", world, tasks, config.test_per_task)
        seconds["data"] += time.time() - clock

        before = _evaluate(
            config, model, test, out / "before", "evaluate the starting model", report
        )
        scores: dict[tuple[str, int], dict[str, Any]] = {}
        for seed in seeds:
            clock = time.time()
            data = _training_pairs(
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
                _train(config, model, data, where / "model", arm, seed, bars)
                report(f"train {arm} seed {seed}", 1, 1)
                seconds["training"] += time.time() - clock
                clock = time.time()
                scores[arm, seed] = _evaluate(
                    config, str(where / "model"), test, where, f"evaluate {arm} seed {seed}", report
                )
                seconds["evaluation"] += time.time() - clock

        seconds["total"] = time.time() - started
        seconds["cpu"] = time.process_time() - cpu_started
        close_run(run, seconds)
        results = _results(config, scores, before, seeds, build, len(test), manifest["runs"])
        from codit.experiments.coin_report import plot, table

        write_results(out, results, table, plot)
    return results


def _test_set(path: Path, world: Any, tasks: list[Task], n: int) -> list[dict[str, Any]]:
    """The held-out instances (the same for every seed and arm), written once."""
    from codit.experiments.coin_tasks import draw_instances

    if not path.is_file():
        rows = [
            {"task": t.name, **_as_dict(i)}
            for t in tasks
            for i in draw_instances(world, t, n, "test")
        ]
        write_lines(path, rows)
    return [json.loads(line) for line in path.read_text().splitlines()]


def _as_dict(instance: Instance) -> dict[str, str]:
    return {"key": instance.key, "text": instance.text, "label": instance.label}


def _training_pairs(
    path: Path, world: Any, tasks: list[Task], n: int, seed: int, test_keys: set[str]
) -> Path:
    """CoIN training pairs for one seed, in ``codit train coin``'s format (written once).

    Each instance gets one training wording (in turn, so every wording is used alike) and a
    paraphrase of it; ``meta.group`` is the task and wording, so the batch layout puts two
    instances asked the same way side by side (the authors' hard negatives).
    """
    from codit.experiments.coin_tasks import draw_instances, paraphrase, prompt

    if path.is_file():
        return path
    rng = random.Random(f"coin-pairs/{seed}")
    rows = []
    for task in tasks:
        for k, instance in enumerate(
            draw_instances(world, task, n, f"train/{seed}", exclude=test_keys)
        ):
            index = k % len(task.train)
            reworded, level = paraphrase(task, index, rng)
            rows.append(
                {
                    "id": f"{task.name}-{k}",
                    "messages": [
                        {"role": "user", "content": prompt(task.train[index], instance)},
                        {"role": "assistant", "content": instance.label},
                    ],
                    "paraphrase": prompt(reworded, instance),
                    "meta": {
                        "group": f"{task.name}/{index}",
                        "task": task.name,
                        "level": level,
                        "key": instance.key,
                    },
                }
            )
    path.parent.mkdir(parents=True, exist_ok=True)
    write_lines(path, rows)
    return path


def _train(
    config: CoinExperimentConfig,
    model: str,
    data: Path,
    output: Path,
    arm: str,
    seed: int,
    bars: bool,
) -> None:
    """``codit train coin`` (``--no-contrastive`` for the baseline) of a copy of the model."""
    from transformers import PrinterCallback

    from codit.training.coin_trainer import build_coin_trainer
    from codit.training.config import CoinConfig
    from codit.training.outputs import MANIFEST, finish

    if (output / MANIFEST).is_file():
        return
    train = CoinConfig(
        model=model,
        data=str(data),
        output=str(output),
        overwrite=True,
        epochs=config.epochs,
        lr=config.lr,
        lr_scheduler="linear",
        warmup_ratio=0.1,
        batch_size=config.batch_size,
        max_length=256,
        seed=seed,
        device=config.device if config.device in ("auto", "cpu") else "cuda",
        logging_steps=10,
        temperature=config.temperature,
        max_ratio=config.max_ratio,
        contrastive=arm == "coin",
    )
    trainer, facts = build_coin_trainer(train, progress=bars)
    trainer.remove_callback(PrinterCallback)  # the losses go to the manifest, not to stdout
    trainer.train()
    finish(trainer, train, "coin", facts)


def _evaluate(
    config: CoinExperimentConfig,
    model: str,
    test: list[dict[str, Any]],
    folder: Path,
    stage: str,
    report: Progress,
) -> dict[str, Any]:
    """Greedy answers under every test wording and level; accuracies (cached in ``folder``)."""
    from codit.experiments.coin_tasks import eval_instruction, is_correct, prompt
    from codit.generation.texts import LocalGenerator

    metrics_path = folder / "metrics.json"
    cached = read_json(metrics_path)
    if cached is not None:
        report(stage, 1, 1)
        return cached
    report(stage, 0, 1)
    asks = []  # (task, wording index, level, test row)
    for row in test:
        task = TASKS[row["task"]]
        for index in range(len(task.test)):
            for level in LEVELS:
                asks.append((task, index, level, row))
    conversations = [
        [
            {
                "role": "user",
                "content": prompt(
                    eval_instruction(task, index, level),
                    Instance(row["key"], row["text"], row["label"]),
                ),
            }
        ]
        for task, index, level, row in asks
    ]
    generator = LocalGenerator(model, device=config.device)
    texts = [
        g.text
        for g in generator.generate(
            conversations,
            "direct",
            batch_size=config.eval_batch_size,
            max_new_tokens=config.max_new_tokens,
            temperature=0.0,
        )
    ]
    hits: dict[str, dict[str, list[list[bool]]]] = {}
    for (task, index, level, row), text in zip(asks, texts, strict=True):
        per_level = hits.setdefault(task.name, {lv: [[] for _ in task.test] for lv in LEVELS})
        per_level[level][index].append(is_correct(text, row["label"]))
    metrics = summarize(hits)
    folder.mkdir(parents=True, exist_ok=True)
    write_lines(
        folder / "answers.jsonl",
        [
            {
                "task": task.name,
                "key": row["key"],
                "wording": index,
                "level": level,
                "label": row["label"],
                "response": text,
                "correct": is_correct(text, row["label"]),
            }
            for (task, index, level, row), text in zip(asks, texts, strict=True)
        ],
    )
    write_json(metrics_path, metrics)
    report(stage, 1, 1)
    return metrics


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


def _results(
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
