"""What a training run leaves behind: the model directory and ``codit_train_config.json``.

``finish`` is the common tail of every method: evaluate on the held-out records, save a model
directory that codit's loader reads directly (see ``model.save_trained``), and write the
manifest beside it: resolved settings, codit and library versions, the data file and its
counts, the starting model, and the losses measured.
"""

from __future__ import annotations

import logging
import shutil
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from codit import __version__
from codit.config import to_dict
from codit.io.atomic import write_json
from codit.training.config import TrainConfig
from codit.training.model import save_trained

log = logging.getLogger(__name__)

MANIFEST = "codit_train_config.json"


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def losses(trainer: Any) -> dict[str, Any]:
    """The losses the trainer logged: every logged step's, the run's mean, and the eval loss."""
    history = trainer.state.log_history
    steps = [{"step": e["step"], "loss": e["loss"]} for e in history if "loss" in e]
    summary: dict[str, Any] = next((e for e in reversed(history) if "train_loss" in e), {})
    return {
        "steps": trainer.state.global_step,
        "train_loss": summary.get("train_loss"),
        "train_runtime_s": summary.get("train_runtime"),
        "logged": steps,
    }


def finish(
    trainer: Any,
    config: TrainConfig,
    method: str,
    facts: dict[str, Any],
) -> dict[str, Any]:
    """Evaluate, save the model with the trainer's tokenizer and write the manifest.

    Args:
        trainer: a trainer that has run ``train()``; its ``processing_class`` is saved too.
        config: the run's settings (``TrainConfig`` or a method's subclass).
        method: ``sft``, ``dpo`` or ``coin``.
        facts: record counts and method facts for the manifest, with ``model_info`` (what
            ``codit.models.loading`` recorded about the starting model).

    Returns:
        The manifest.
    """
    facts = dict(facts)
    model_info = facts.pop("model_info")
    metrics = losses(trainer)
    if trainer.eval_dataset is not None:
        metrics["eval_loss"] = trainer.evaluate().get("eval_loss")
    trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    output = Path(str(config.output))
    saved = save_trained(trainer.model, trainer.processing_class, output)
    shutil.rmtree(output / "checkpoints", ignore_errors=True)
    manifest = {
        "codit_version": __version__,
        "method": method,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "config": to_dict(config),
        "resolved": {
            "learning_rate": config.learning_rate(method),
            "device": str(trainer.args.device),
            "bf16": bool(trainer.args.bf16),
            "lora_targets": list(config.lora_targets) or ("all-linear" if config.lora else None),
            "trainable_parameters": trainable,
        },
        "data": {"path": str(Path(str(config.data)).resolve()), **facts},
        "model": model_info,
        "versions": {
            p: _version(p) for p in ("torch", "transformers", "trl", "peft", "accelerate")
        },
        "metrics": metrics,
        "saved": saved,
    }
    path = output / MANIFEST
    write_json(path, manifest)  # experiments read its presence as a finished run
    log.info("wrote %s", path)
    return manifest
