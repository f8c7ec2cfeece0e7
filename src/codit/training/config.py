"""The settings of a training run: one frozen dataclass per component.

``TrainConfig`` holds what every method shares (model, data, schedule, LoRA, seed) and is SFT's
config; ``DpoConfig`` and ``CoinConfig`` add what only DPO or CoIN use. They are the single source of the
``codit train`` flags, of a YAML config file and of ``codit_train_config.json``. Validation
happens in ``__post_init__`` and reports every problem at once.

Importing this module imports neither torch nor TRL; ``trainer_arguments`` returns plain
keyword arguments for TRL's configs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codit.errors import ConfigError

SCHEDULERS = (
    "linear",
    "cosine",
    "constant",
    "constant_with_warmup",
    "cosine_with_restarts",
    "polynomial",
)
DEVICES = ("auto", "cpu", "cuda")

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

    model: str | None = field(
        default=None,
        metadata={"help": "model to train: hub id, local directory, tiny-instruct or tiny-base"},
    )
    data: str | None = field(
        default=None, metadata={"help": "training records, one JSON object per line"}
    )
    output: str | None = field(default=None, metadata={"help": "directory for the trained model"})
    overwrite: bool = field(
        default=False, metadata={"help": "write into --output even if it already holds files"}
    )
    epochs: float = field(
        default=1.0,
        metadata={"help": "passes over the data, > 0 (ignored when --max-steps is set)"},
    )
    max_steps: int | None = field(
        default=None, metadata={"help": "optimizer steps to run, >= 1; overrides --epochs"}
    )
    lr: float | None = field(
        default=None,
        metadata={
            "help": "peak learning rate, > 0 (default: 2e-5 for SFT/CoIN, 1e-6 for DPO; "
            "1e-4 and 5e-6 with LoRA)"
        },
    )
    lr_scheduler: str = field(
        default="linear", metadata={"help": "learning-rate schedule", "choices": SCHEDULERS}
    )
    warmup_ratio: float = field(
        default=0.0, metadata={"help": "share of the steps spent warming up, in [0, 1)"}
    )
    batch_size: int = field(
        default=8, metadata={"help": "sequences (or pairs) per device per step, >= 1"}
    )
    grad_accum: int = field(
        default=1, metadata={"help": "batches accumulated per optimizer step, >= 1"}
    )
    max_length: int = field(
        default=1024,
        metadata={"help": "longest tokenized sequence kept; longer ones are cut at the end, >= 8"},
    )
    lora_r: int = field(default=0, metadata={"help": "LoRA rank, >= 0; 0 trains every weight"})
    lora_alpha: int = field(default=16, metadata={"help": "LoRA scaling alpha, >= 1"})
    lora_dropout: float = field(
        default=0.05, metadata={"help": "dropout on the LoRA path, in [0, 1)"}
    )
    lora_targets: tuple[str, ...] = field(
        default=(),
        metadata={
            "help": "module names LoRA adapts, e.g. q_proj (comma-separated allowed; default: all linear layers)"
        },
    )
    seed: int = field(default=0, metadata={"help": "seed of the model init, data split and order"})
    eval_split: float = field(
        default=0.0,
        metadata={"help": "share of the records held out for an evaluation loss, in [0, 0.5]"},
    )
    device: str = field(
        default="auto",
        metadata={"help": "auto (CUDA when present), cpu or cuda", "choices": DEVICES},
    )
    gradient_checkpointing: bool = field(
        default=False, metadata={"help": "recompute activations to save memory"}
    )
    logging_steps: int = field(
        default=10, metadata={"help": "optimizer steps between loss logs, >= 1"}
    )

    def __post_init__(self) -> None:
        if self.lora_targets:  # "q_proj,v_proj" and repeated flags both work
            names = tuple(n.strip() for t in self.lora_targets for n in t.split(",") if n.strip())
            object.__setattr__(self, "lora_targets", names)
        problems = self.problems()
        if problems:
            raise ConfigError(problems)

    def problems(self) -> list[str]:
        """Every missing or out-of-range setting, as sentences naming the flag."""
        out = [
            f"--{name} is required"
            for name in ("model", "data", "output")
            if not getattr(self, name)
        ]
        if self.epochs <= 0:
            out.append(f"--epochs must be > 0, got {self.epochs}")
        if self.max_steps is not None and self.max_steps < 1:
            out.append(f"--max-steps must be >= 1, got {self.max_steps}")
        if self.lr is not None and self.lr <= 0:
            out.append(f"--lr must be > 0, got {self.lr}")
        if self.lr_scheduler not in SCHEDULERS:
            out.append(
                f"--lr-scheduler must be one of {', '.join(SCHEDULERS)}, not {self.lr_scheduler!r}"
            )
        if not 0.0 <= self.warmup_ratio < 1.0:
            out.append(f"--warmup-ratio must be in [0, 1), got {self.warmup_ratio}")
        for name in ("batch_size", "grad_accum", "logging_steps"):
            if getattr(self, name) < 1:
                out.append(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if self.max_length < 8:
            out.append(f"--max-length must be >= 8, got {self.max_length}")
        if self.lora_r < 0:
            out.append(f"--lora-r must be >= 0 (0 trains every weight), got {self.lora_r}")
        if self.lora_alpha < 1:
            out.append(f"--lora-alpha must be >= 1, got {self.lora_alpha}")
        if not 0.0 <= self.lora_dropout < 1.0:
            out.append(f"--lora-dropout must be in [0, 1), got {self.lora_dropout}")
        if not 0.0 <= self.eval_split <= 0.5:
            out.append(f"--eval-split must be in [0, 0.5], got {self.eval_split}")
        if self.device not in DEVICES:
            out.append(f"--device must be one of {', '.join(DEVICES)}, not {self.device!r}")
        return out

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

    beta: float = field(
        default=0.1,
        metadata={"help": "DPO beta: how far the policy may move from the reference, > 0"},
    )

    def problems(self) -> list[str]:
        out = super().problems()
        if self.beta <= 0:
            out.append(f"--beta must be > 0, got {self.beta}")
        return out


@dataclass(frozen=True)
class CoinConfig(TrainConfig):
    """The shared settings plus what only CoIN uses.

    ``temperature`` and ``max_ratio`` default to the authors' values; the rest keep practical
    defaults (in-batch negatives, 8 pairs a step, full fine-tuning). ``--config coin-authors``
    sets the authors' LoRA, learning rate, warmup, length and pair negatives with accumulation
    to 64 (docs/methods/coin.md).
    """

    temperature: float = field(
        default=0.05, metadata={"help": "InfoNCE temperature tau, > 0 (the authors: 0.05)"}
    )
    negatives: str = field(
        default="in-batch",
        metadata={
            "help": "in-batch: every other row of the batch is a negative; pair: each two "
            "neighbouring rows (a hard pair) are each other's only negative, the authors' "
            "micro-batch of two (needs an even --batch-size)",
            "choices": ("in-batch", "pair"),
        },
    )
    max_ratio: float = field(
        default=1000.0,
        metadata={
            "help": "cap on the weight L_gen / L_ctr of the contrastive term, > 0 (the authors: 1000)"
        },
    )
    contrastive: bool = field(
        default=True,
        metadata={"help": "add the contrastive term (--no-contrastive: the paper's baseline)"},
    )

    def problems(self) -> list[str]:
        out = super().problems()
        if self.temperature <= 0:
            out.append(f"--temperature must be > 0, got {self.temperature}")
        if self.max_ratio <= 0:
            out.append(f"--max-ratio must be > 0, got {self.max_ratio}")
        if self.negatives not in ("in-batch", "pair"):
            out.append(f"--negatives must be in-batch or pair, not {self.negatives!r}")
        elif self.negatives == "pair" and self.batch_size % 2:
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
    return {
        "output_dir": str(Path(str(config.output)) / "checkpoints"),
        "num_train_epochs": config.epochs,
        "max_steps": config.max_steps if config.max_steps is not None else -1,
        "learning_rate": config.learning_rate(method),
        "lr_scheduler_type": config.lr_scheduler,
        # transformers 5 folds warmup_ratio into warmup_steps: a float below 1 is a ratio.
        "warmup_steps": config.warmup_ratio,
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
