"""``codit train sft|dpo|coin``: fine-tune a model on codit's records.

Flags come from the method's config dataclass (``codit.training.config``); the work is done by
``codit.training``. Importing this module does not import torch, transformers or TRL.
"""

from __future__ import annotations

import argparse
from typing import Any

from codit.config import add_arguments, config_help, from_namespace
from codit.training.config import CoinConfig, DpoConfig, TrainConfig

METHODS: dict[str, tuple[type, str]] = {
    "sft": (
        TrainConfig,
        "supervised fine-tuning on conversational records, loss on the answers only",
    ),
    "dpo": (DpoConfig, "direct preference optimisation on {prompt, chosen, rejected} records"),
    "coin": (CoinConfig, "contrastive instruction tuning (CoIN) on original/paraphrase pairs"),
}


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "train",
        help="fine-tune a model on codit's records with TRL (SFT, DPO, CoIN)",
        description="Fine-tune a model on codit's records. Needs the train extra: pip install 'codit[train]'.",
    )
    methods = parser.add_subparsers(dest="method", metavar="METHOD", required=True)
    for name, (config_cls, help_text) in METHODS.items():
        sub = methods.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--config", help=config_help(f"train {name}"))
        add_arguments(sub, config_cls)
        sub.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    config_cls, _ = METHODS[args.method]
    config: Any = from_namespace(config_cls, args)
    from codit.cli.quiet import quiet_transformers

    quiet_transformers()  # the Trainer's own step bar stays
    train: Any
    if args.method == "sft":
        from codit.training.sft import train_sft as train
    elif args.method == "dpo":
        from codit.training.dpo import train_dpo as train
    else:
        from codit.training.coin_trainer import train_coin as train
    manifest = train(config, progress=True)
    metrics = manifest["metrics"]
    data = manifest["data"]
    print(
        f"trained {args.method} on {data['train']} records ({data['eval']} held out) in "
        f"{metrics['steps']} steps; train loss {_fmt(metrics['train_loss'])}"
        + (f", eval loss {_fmt(metrics['eval_loss'])}" if "eval_loss" in metrics else "")
    )
    print(f"model: {manifest['saved']['model']}")
    if manifest["saved"]["adapter"]:
        print(f"LoRA adapter: {manifest['saved']['adapter']}")
    return 0


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"
