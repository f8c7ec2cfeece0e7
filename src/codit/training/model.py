"""The model side of a training run: tokenizer, weights, LoRA, and the saved directory.

Loading goes through ``codit.models.loading`` (built-in names, local directories, hub ids), so a
trained model is found the same way as any other. ``save_trained`` writes the directory that
``codit generate`` and ``codit eval`` load directly: config, safetensors, tokenizer with its chat
template and generation config. With LoRA the adapters are merged into that copy, and the
adapter alone is kept in ``adapter/`` for those who want to stack or share it.

The training loops are elsewhere (``sft``, ``dpo``, ``coin_trainer``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from codit.errors import ModelError
from codit.training.config import TrainConfig
from codit.training.templates import FALLBACK_CHAT_TEMPLATE

log = logging.getLogger(__name__)


def load_student_tokenizer(name: str) -> tuple[Any, str]:
    """The model's tokenizer, ready for training: a pad token and a chat template.

    Returns:
        (tokenizer, where the chat template came from: ``model`` or ``codit fallback``).
    """
    from codit.models.loading import load_tokenizer as load

    tokenizer = load(name)
    if tokenizer.eos_token is None:
        raise ModelError(
            f"the tokenizer of {name!r} has no EOS token, so a trained model could never stop"
        )
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    source = "model"
    if not getattr(tokenizer, "chat_template", None):
        log.warning(
            "%s has no chat template; using codit's plain '### User:/### Assistant:' template", name
        )
        tokenizer.chat_template = FALLBACK_CHAT_TEMPLATE
        source = "codit fallback"
    return tokenizer, source


def load_student(config: TrainConfig) -> tuple[Any, dict[str, Any]]:
    """The model to train (bf16 on CUDA, fp32 on CPU) and the facts a manifest records."""
    from codit.models.loading import load_model as load

    loaded = load(str(config.model), device=config.device, dtype="auto")
    expose_backbone(loaded.model)
    return loaded.model, loaded.info


def expose_backbone(model: Any) -> None:
    """Make ``model.base_model`` the decoder backbone where transformers 4 leaves it the model.

    TRL's SFTTrainer (1.16) computes the loss through a fused LM head that runs
    ``model.base_model`` and reads its ``last_hidden_state``. In transformers 4, Gemma 3's text
    model class keeps the multimodal prefix (``language_model``) while its backbone is ``.model``,
    so ``base_model`` falls back to the whole causal LM and training fails. Pointing this one
    instance at ``.model`` fixes it; loading and saving read the class's prefix, not the
    instance's, so checkpoints are unchanged. A no-op where ``base_model`` is already a backbone.
    """
    import torch

    backbone = getattr(model, "model", None)
    falls_back = getattr(model, "base_model", None) is model
    if falls_back and isinstance(backbone, torch.nn.Module):
        model.base_model_prefix = "model"


def lora_config(config: TrainConfig) -> Any:
    """peft's ``LoraConfig`` for the run, or None without LoRA."""
    if not config.lora:
        return None
    from codit.errors import require

    require("peft", "train")
    from peft import LoraConfig

    return LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=list(config.lora_targets) or "all-linear",
        task_type="CAUSAL_LM",
    )


def save_trained(model: Any, tokenizer: Any, output: str | Path) -> dict[str, Any]:
    """Write a directory codit's loader reads: merged weights, tokenizer, generation config.

    Args:
        model: the trained model, plain or wrapped by peft.
        tokenizer: its tokenizer, with the chat template the model was trained on.
        output: the directory.

    Returns:
        What was written: ``{"model": dir, "adapter": dir or None}``.
    """
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    adapter = None
    if hasattr(model, "merge_and_unload"):  # a peft model
        adapter = out / "adapter"
        # the vocabulary is never resized here; "auto" would look the base model up on the hub
        model.save_pretrained(adapter, save_embedding_layers=False)
        tokenizer.save_pretrained(adapter)
        model = model.merge_and_unload()
    generation = model.generation_config
    if generation.eos_token_id is None:
        generation.eos_token_id = tokenizer.eos_token_id
    if generation.pad_token_id is None:
        generation.pad_token_id = tokenizer.pad_token_id
    model.config.use_cache = True  # gradient checkpointing may have turned it off
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    log.info("saved the trained model to %s", out)
    return {"model": str(out), "adapter": None if adapter is None else str(adapter)}
