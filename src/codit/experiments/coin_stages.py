"""The stages of ``codit experiment coin`` (``coin_mini.run``), one function each.

The held-out test set and each seed's training pairs (clean and perturbed wordings of the toy
tasks), one model trained with or without the CoIN term (``codit train coin``), and a model's
greedy answers scored per perturbation level. Each stage leaves its files in the run directory
and returns at once when they are already there, so a rerun resumes.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codit.experiments.coin_results import summarize
from codit.experiments.coin_tasks import LEVELS, TASKS, Instance, Task
from codit.io.atomic import write_json, write_lines
from codit.io.manifest import read_json

if TYPE_CHECKING:
    from codit.experiments.coin_mini import CoinExperimentConfig

Progress = Callable[[str, int, int], None]


def test_set(path: Path, world: Any, tasks: list[Task], n: int) -> list[dict[str, Any]]:
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


def training_pairs(
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


def train_arm(
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


def evaluate_model(
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
