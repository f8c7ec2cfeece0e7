"""Direct preference optimisation on codit's preference records, with TRL's ``DPOTrainer``.

The records (``{"prompt", "chosen", "rejected", "meta"}``, e.g. from ``codit ecd``) are read as
they are; string fields become single turns, so every pair goes through the model's chat
template exactly as a conversation would at inference. The reference model is a frozen copy of
the starting model (with LoRA: the same model with its adapters switched off).
"""

from __future__ import annotations

from typing import Any

from codit.errors import require
from codit.training.config import DpoConfig, trainer_arguments
from codit.training.data import load_preferences, split
from codit.training.model import load_student, load_student_tokenizer, lora_config
from codit.training.outputs import finish


def build_dpo_trainer(config: DpoConfig, progress: bool = False) -> tuple[Any, dict[str, Any]]:
    """Check the data, load the model and set up TRL's ``DPOTrainer`` (not yet trained).

    Returns:
        (the trainer, facts for the manifest).
    """
    require("trl", "train")
    config.check_output()
    records = load_preferences(str(config.data))
    train, held = split(records, config.eval_split, config.seed)
    tokenizer, template_source = load_student_tokenizer(str(config.model))
    model, model_info = load_student(config)

    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    args = DPOConfig(
        **trainer_arguments(config, "dpo", model.device.type == "cuda", bool(held), progress),
        max_length=config.max_length,
        beta=config.beta,
    )
    trainer = DPOTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(train),
        eval_dataset=Dataset.from_list(held) if held else None,
        processing_class=tokenizer,
        peft_config=lora_config(config),
    )
    facts = {
        "records": len(records),
        "train": len(train),
        "eval": len(held),
        "chat_template": template_source,
        "model_info": model_info,
    }
    return trainer, facts


def train_dpo(config: DpoConfig, progress: bool = False) -> dict[str, Any]:
    """Train ``config.model`` with DPO on the preference records of ``config.data`` and save it.

    Returns:
        The manifest written to ``OUTPUT/codit_train_config.json``.
    """
    trainer, facts = build_dpo_trainer(config, progress)
    trainer.train()
    return finish(trainer, config, "dpo", facts)
