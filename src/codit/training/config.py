"""The settings of a training run: one frozen dataclass per component.

``TrainConfig`` holds what every method shares (model, data, schedule, LoRA, seed) and is SFT's
config; ``DpoConfig`` and ``CoinConfig`` add what only DPO or CoIN use. They are the single
source of the ``codit train`` flags, of a YAML config file and of ``codit_train_config.json``.
Ranges and choices are declared on the fields (``codit.settings``); ``__post_init__`` checks
them with the rules across fields and reports every problem at once.

Importing this module imports neither torch nor TRL; ``trainer_arguments`` returns plain
keyword arguments for TRL's configs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codit.errors import ConfigError
from codit.models.loading import DEVICES
from codit.settings import check, setting

SCHEDULERS = (
    "linear",
    "cosine",
    "constant",
    "constant_with_warmup",
    "cosine_with_restarts",
    "polynomial",
)
NEGATIVES = ("in-batch", "pair")

# Learning rates that work out of the box: DPO moves far less than SFT, and LoRA adapters need
# a larger step than full fine-tuning. (method, uses LoRA) -> lr.
DEFAULT_LR = {
    ("sft", False): 2e-5,
    ("sft", True): 1e-4,
    ("coin", False): 2e-5,
    ("coin", True): 1e-4,  # CoIN's own setting (LoRA r=16, lr 1e-4)
    ("dpo", False): 1e-6,
    ("dpo", True): 5e-6,
}


@dataclass(frozen=True)
class TrainConfig:
    """What every training method shares."""

    model: str | None = setting(
        None, "model to train: hub id, local directory, tiny-instruct or tiny-base"
    )
    data: str | None = setting(None, "training records, one JSON object per line")
    output: str | None = setting(None, "directory for the trained model")
    overwrite: bool = setting(False, "write into --output even if it already holds files")
    epochs: float = setting(1.0, "passes over the data (ignored when --max-steps is set)", gt=0.0)
    max_steps: int | None = setting(
        None, "optimizer steps to run; overrides --epochs", ge=1, optional=True
    )
    lr: float | None = setting(
        None,
        "peak learning rate (default: 2e-5 for SFT/CoIN, 1e-6 for DPO; 1e-4 and 5e-6 with LoRA)",
        gt=0.0,
        optional=True,
    )
    lr_scheduler: str = setting("linear", "learning-rate schedule", choices=SCHEDULERS)
    warmup_ratio: float = setting(0.0, "share of the steps spent warming up", ge=0.0, lt=1.0)
    batch_size: int = setting(8, "sequences (or pairs) per device per step", ge=1)
    grad_accum: int = setting(1, "batches accumulated per optimizer step", ge=1)
    max_length: int = setting(
        1024, "longest tokenized sequence kept; longer ones are cut at the end", ge=8
    )
    lora_r: int = setting(0, "LoRA rank; 0 trains every weight", ge=0)
    lora_alpha: int = setting(16, "LoRA scaling alpha", ge=1)
    lora_dropout: float = setting(0.05, "dropout on the LoRA path", ge=0.0, lt=1.0)
    lora_targets: tuple[str, ...] = setting(
        (),
        "module names LoRA adapts, e.g. q_proj (comma-separated allowed; default: all linear "
        "layers)",
    )
    seed: int = setting(0, "seed of the model init, data split and order")
    eval_split: float = setting(
        0.0, "share of the records held out for an evaluation loss", ge=0.0, le=0.5
    )
    device: str = setting("auto", "auto (CUDA when present), cpu or cuda", choices=DEVICES)
    gradient_checkpointing: bool = setting(False, "recompute activations to save memory")
    logging_steps: int = setting(10, "optimizer steps between loss logs", ge=1)

    def __post_init__(self) -> None:
        if self.lora_targets:  # "q_proj,v_proj" and repeated flags both work
            names = tuple(n.strip() for t in self.lora_targets for n in t.split(",") if n.strip())
            object.__setattr__(self, "lora_targets", names)
        check(self, self.extra_problems())

    def extra_problems(self) -> list[str]:
        """The rules the fields' declared ranges cannot say, as sentences naming the flag."""
        return [
            f"--{name} is required"
            for name in ("model", "data", "output")
            if not getattr(self, name)
        ]

    @property
    def lora(self) -> bool:
        return self.lora_r > 0

    def learning_rate(self, method: str) -> float:
        """The lr the run uses: ``--lr``, else the default for ``method`` and LoRA."""
        return self.lr if self.lr is not None else DEFAULT_LR[(method, self.lora)]

    def check_output(self) -> None:
        """Refuse to write into a directory that already holds files, unless --overwrite."""
        out = Path(str(self.output))
        if out.is_file():
            raise ConfigError(f"--output {out} is a file; give a directory")
        if out.is_dir() and any(out.iterdir()) and not self.overwrite:
            raise ConfigError(
                f"--output {out} already holds files; pick a new directory or pass --overwrite"
            )


@dataclass(frozen=True)
class DpoConfig(TrainConfig):
    """The shared settings plus what only DPO uses."""

    beta: float = setting(0.1, "DPO beta: how far the policy may move from the reference", gt=0.0)


@dataclass(frozen=True)
class CoinConfig(TrainConfig):
    """The shared settings plus what only CoIN uses.

    ``temperature`` and ``max_ratio`` default to the authors' values; the rest keep practical
    defaults (in-batch negatives, 8 pairs a step, full fine-tuning). ``--config coin-authors``
    sets the authors' LoRA, learning rate, warmup, length and pair negatives with accumulation
    to 64 (docs/methods/coin.md).
    """

    temperature: float = setting(0.05, "InfoNCE temperature tau (the authors: 0.05)", gt=0.0)
    negatives: str = setting(
        "in-batch",
        "in-batch: every other row of the batch is a negative; pair: each two neighbouring rows "
        "(a hard pair) are each other's only negative, the authors' micro-batch of two (needs "
        "an even --batch-size)",
        choices=NEGATIVES,
    )
    max_ratio: float = setting(
        1000.0,
        "cap on the weight L_gen / L_ctr of the contrastive term (the authors: 1000)",
        gt=0.0,
    )
    contrastive: bool = setting(
        True, "add the contrastive term (--no-contrastive: the paper's baseline)"
    )

    def extra_problems(self) -> list[str]:
        out = super().extra_problems()
        if self.negatives == "pair" and self.batch_size % 2:
            out.append(
                f"--negatives pair needs an even --batch-size (blocks of two), got {self.batch_size}"
            )
        return out


def trainer_arguments(
    config: TrainConfig, method: str, use_cuda: bool, has_eval: bool, progress: bool = False
) -> dict[str, Any]:
    """Keyword arguments shared by TRL's ``SFTConfig``/``DPOConfig`` and transformers'
    ``TrainingArguments``.

    Args:
        config: the run's settings.
        method: ``sft``, ``dpo`` or ``coin`` (picks the default lr).
        use_cuda: bf16 mixed precision on CUDA; fp32 on CPU.
        has_eval: whether an evaluation set exists (evaluated once per epoch and at the end).
        progress: show the trainer's progress bar.
    """
    from transformers import TrainingArguments

    # transformers 5 renamed gradient_checkpointing; the old name still works but warns.
    checkpointing = (
        "activation_checkpointing"
        if "activation_checkpointing" in TrainingArguments.__dataclass_fields__
        else "gradient_checkpointing"
    )
    warmup = (
        "warmup_ratio"
        if "warmup_ratio" in TrainingArguments.__dataclass_fields__
        else "warmup_steps"
    )
    return {
        "output_dir": str(Path(str(config.output)) / "checkpoints"),
        "num_train_epochs": config.epochs,
        "max_steps": config.max_steps if config.max_steps is not None else -1,
        "learning_rate": config.learning_rate(method),
        "lr_scheduler_type": config.lr_scheduler,
        # transformers 5 folds warmup_ratio into warmup_steps (a float below 1 is a ratio);
        # transformers 4 keeps a separate warmup_ratio and wants an int warmup_steps.
        warmup: config.warmup_ratio,
        "per_device_train_batch_size": config.batch_size,
        "per_device_eval_batch_size": config.batch_size,
        "gradient_accumulation_steps": config.grad_accum,
        "seed": config.seed,
        "data_seed": config.seed,
        "bf16": use_cuda,
        "fp16": False,
        "use_cpu": not use_cuda,
        checkpointing: config.gradient_checkpointing,
        "logging_steps": config.logging_steps,
        "eval_strategy": "epoch" if has_eval and config.max_steps is None else "no",
        "save_strategy": "no",  # the final model is saved by codit, in the layout its loader reads
        "report_to": "none",
        "disable_tqdm": not progress,
    }
