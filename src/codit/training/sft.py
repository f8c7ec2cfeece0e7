"""Supervised fine-tuning on codit's conversational records, with TRL's ``SFTTrainer``.

The loss falls on the assistant's tokens only. Two ways get there, picked from the chat template:

- the template marks assistant turns with ``{% generation %}`` (or TRL knows how to patch it):
  TRL's ``assistant_only_loss``, every assistant turn of a conversation is trained;
- otherwise the record becomes TRL's conversational prompt/completion form (everything before
  the last turn is the prompt) and TRL's ``completion_only_loss`` trains the last answer.

Either way the end-of-turn token the template writes after an answer is part of the loss, so the
model learns to stop.
"""

from __future__ import annotations

import logging
from typing import Any

from codit.errors import require
from codit.training.config import TrainConfig, trainer_arguments
from codit.training.data import load_sft, split
from codit.training.model import load_student, load_student_tokenizer, lora_config
from codit.training.outputs import finish
from codit.training.templates import has_generation_blocks

log = logging.getLogger(__name__)


def loss_mask(tokenizer: Any) -> str:
    """``assistant`` when TRL can mask assistant turns with this chat template, else ``completion``."""
    from trl.chat_template_utils import get_training_chat_template

    template = tokenizer.chat_template
    if has_generation_blocks(template):
        return "assistant"
    try:
        get_training_chat_template(tokenizer)  # what SFTTrainer does with assistant_only_loss
    except ValueError:  # a template TRL does not know how to patch
        return "completion"
    return "assistant"


def as_prompt_completion(record: dict[str, Any]) -> dict[str, Any]:
    """``{"messages"}`` -> ``{"prompt": all but the last turn, "completion": [last turn]}``."""
    return {"prompt": record["messages"][:-1], "completion": record["messages"][-1:]}


def build_sft_trainer(config: TrainConfig, progress: bool = False) -> tuple[Any, dict[str, Any]]:
    """Check the data, load the model and set up TRL's ``SFTTrainer`` (not yet trained).

    Args:
        config: the run's settings.
        progress: show TRL's progress bar (the CLI does; tests do not).

    Returns:
        (the trainer, facts for the manifest: record counts, loss mask, template, model info).
    """
    require("trl", "train")
    config.check_output()
    records = load_sft(str(config.data))
    train, held = split(records, config.eval_split, config.seed)
    tokenizer, template_source = load_student_tokenizer(str(config.model))
    mask = loss_mask(tokenizer)
    if mask == "completion":
        multi = sum(sum(t["role"] == "assistant" for t in r["messages"]) > 1 for r in records)
        if multi:
            log.warning(
                "%d records have several assistant turns; this chat template has no {%% generation %%} "
                "markers, so only the last answer of each is trained",
                multi,
            )
        train, held = (
            [as_prompt_completion(r) for r in train],
            [as_prompt_completion(r) for r in held],
        )
    model, model_info = load_student(config)

    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    args = SFTConfig(
        **trainer_arguments(config, "sft", model.device.type == "cuda", bool(held), progress),
        max_length=config.max_length,
        assistant_only_loss=mask == "assistant",
        completion_only_loss=mask == "completion",
        packing=False,
    )
    trainer = SFTTrainer(
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
        "loss_mask": mask,
        "chat_template": template_source,
        "model_info": model_info,
    }
    return trainer, facts


def train_sft(config: TrainConfig, progress: bool = False) -> dict[str, Any]:
    """Fine-tune ``config.model`` on the SFT records of ``config.data`` and save it.

    Returns:
        The manifest written to ``OUTPUT/codit_train_config.json``.
    """
    trainer, facts = build_sft_trainer(config, progress)
    trainer.train()
    return finish(trainer, config, "sft", facts)
