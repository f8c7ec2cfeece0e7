"""The stages of ``codit experiment codit`` (``codit_mini.run``), one function each.

The held-out prompts and fresh training prompts, the teacher's datasets (``codit generate``), a
student fine-tuned on one of them (``codit train sft``), a model's greedy answers scored by
IFEval's checks, and the token shift of the default cell. Each stage leaves its files in the run
directory and returns at once when they are already there, so a rerun resumes.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codit.errors import DataError
from codit.experiments.grid import DEFAULT_CELL, cell_tag, default_cell
from codit.io.atomic import write_json, write_lines

if TYPE_CHECKING:
    from codit.experiments.codit_mini import CoditExperimentConfig

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]


def heldout_file(config: CoditExperimentConfig) -> Path:
    from codit.tiny.build import HELDOUT_PATH

    if config.heldout:
        path = Path(config.heldout)
    elif config.instruct == "tiny-instruct":
        path = HELDOUT_PATH
    else:  # ``codit tiny build --output-dir D`` writes D/heldout.jsonl beside the models
        path = Path(config.instruct).parent / "heldout.jsonl"
    if not path.is_file():
        raise DataError(f"no held-out prompts at {path}; give --heldout FILE (IFEval jsonl)")
    return path


def write_prompts(path: Path, build: dict[str, Any], n: int, heldout: set[str]) -> None:
    """``n`` new prompts drawn after the teacher's own ``conversations`` training prompts.

    ``instruction_data`` draws training examples one after another from one seeded stream, so
    the first ``conversations`` of a longer draw are exactly the teacher's SFT prompts; the
    rest are new prompts of the same distribution, distinct from those and from the held-out set.
    """
    from codit.tiny.conversations import instruction_data
    from codit.tiny.world import make_world

    drawn, _ = instruction_data(
        make_world(build["seed"]), build["conversations"] + n, 0, build["seed"]
    )
    fresh = drawn[build["conversations"] :]
    clash = [e.prompt for e in fresh if e.prompt in heldout]
    if clash:
        raise DataError(f"{len(clash)} training prompts are also held out, e.g. {clash[0]!r}")
    rows = [  # the messages are system (sometimes) and user; the teacher answers
        {"id": str(i), "messages": e.messages()[:-1], **e.ifeval(), "key": i}
        for i, e in enumerate(fresh)
    ]
    write_lines(path, rows)


def teacher_data(
    config: CoditExperimentConfig,
    instruct: str,
    base: str,
    prompts: Path,
    arm: str,
    cell: tuple[float, float] | None,
    seed: int,
    folder: Path,
    report: Progress,
) -> Path:
    """One teacher dataset: ``arm`` is ``direct`` (``cell`` None) or a CoDIT cell's tag."""
    from codit.decoding.config import DecodingConfig
    from codit.generation.config import GenerateConfig
    from codit.generation.run import errors_path, generate
    from codit.io.jsonl import read_ids

    output = folder / f"{arm}-seed{seed}.jsonl"
    stage = f"teacher {arm} seed {seed}"
    # a prompt the teacher failed on (e.g. longer than its context) stays in the errors file
    total, before = config.prompts, len(read_ids(output) | read_ids(errors_path(output)))
    report(stage, min(before, total), total)
    if before < total:
        alpha, beta = cell or DEFAULT_CELL  # direct sampling ignores both
        decoding = DecodingConfig(
            mode="direct" if cell is None else "codit",
            alpha=alpha,
            beta=beta,
            temperature=config.temperature,
            top_p=config.top_p,
            max_new_tokens=config.max_new_tokens,
            seed=seed,
        )
        summary = generate(
            GenerateConfig(
                input=str(prompts),
                output=str(output),
                instruct=instruct,
                base=base,
                decoding=decoding,
                batch_size=config.batch_size,
                device=config.device,
            ),
            on_progress=lambda done, _tokens: report(stage, before + done, total),
        )
        if summary.failed:
            log.warning("%s: %d prompts failed; see %s", stage, summary.failed, summary.errors_path)
    report(stage, total, total)
    return output


def fine_tune(
    config: CoditExperimentConfig, student: Path, data: Path, output: Path, seed: int, bars: bool
) -> None:
    """``codit train sft`` of a copy of the student on one teacher dataset (skipped if done)."""
    from transformers import PrinterCallback

    from codit.training.config import TrainConfig
    from codit.training.outputs import MANIFEST, finish
    from codit.training.sft import build_sft_trainer

    if (output / MANIFEST).is_file():
        return
    train = TrainConfig(
        model=str(student),
        data=str(data),
        output=str(output),
        overwrite=True,
        epochs=config.sft_epochs,
        lr=config.sft_lr,
        lr_scheduler="cosine",
        warmup_ratio=0.05,
        batch_size=config.sft_batch,
        max_length=512,
        seed=seed,
        device=config.device if config.device in ("auto", "cpu") else "cuda",
        logging_steps=10,
    )
    trainer, facts = build_sft_trainer(train, progress=bars)
    trainer.remove_callback(PrinterCallback)  # the losses go to the manifest, not to stdout
    trainer.train()
    finish(trainer, train, "sft", facts)


def evaluate_model(
    config: CoditExperimentConfig,
    model: str,
    heldout: list[Any],
    folder: Path,
    stage: str,
    report: Progress,
) -> dict[str, Any]:
    """Greedy answers to the held-out prompts and IFEval's metrics (cached in ``folder``)."""
    from codit.evaluation.ifeval import evaluate, summarize
    from codit.generation.texts import LocalGenerator

    metrics_path = folder / "metrics.json"
    if metrics_path.is_file():
        report(stage, 1, 1)
        return json.loads(metrics_path.read_text())
    report(stage, 0, 1)
    generator = LocalGenerator(model, device=config.device)
    texts = [
        g.text
        for g in generator.generate(
            [[{"role": "user", "content": p.prompt}] for p in heldout],
            "direct",
            batch_size=config.batch_size,
            max_new_tokens=config.max_new_tokens,
            temperature=0.0,
        )
    ]
    verdicts = evaluate(heldout, {str(p.key): t for p, t in zip(heldout, texts, strict=True)})
    metrics = summarize(verdicts)
    rows = [
        {"key": p.key, "prompt": p.prompt, "response": t, **v.to_dict()}
        for p, t, v in zip(heldout, texts, verdicts, strict=True)
    ]
    write_lines(folder / "heldout.jsonl", rows)
    write_json(metrics_path, metrics)
    report(stage, 1, 1)
    return metrics


def measure_token_shift(
    config: CoditExperimentConfig,
    instruct: str,
    base: str,
    data: dict[tuple[str, int], Path],
    data_seeds: list[int],
    out: Path,
) -> dict[str, Any]:
    """``token_shift`` over the default cell's CoDIT data of every seed (cached in ``out``)."""
    from codit.experiments.token_shift import token_shift
    from codit.io.manifest import read_json

    alpha, beta = default_cell(config.grid)
    tag = cell_tag(alpha, beta)
    path = out / "token-shift.json"
    cached = read_json(path)
    if cached and cached.get("tag") == tag and cached.get("seeds") == data_seeds:
        return cached
    shift = token_shift(
        instruct,
        base,
        [data[tag, s] for s in data_seeds],
        [data["direct", s] for s in data_seeds],
        alpha,
        beta,
        config.temperature,
        device="cpu" if config.device == "auto" else config.device,
    )
    shift.update({"tag": tag, "seeds": data_seeds})
    write_json(path, shift)
    return shift
