"""The student's backbone is reachable as ``base_model`` (TRL's fused LM head runs it)."""

from __future__ import annotations

import torch
from transformers import Gemma3ForCausalLM, Gemma3TextConfig, LlamaConfig, LlamaForCausalLM

from codit.training.model import expose_backbone

SHAPE = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2)


def test_gemma3_text_model_exposes_its_backbone() -> None:
    """transformers 4 leaves Gemma3ForCausalLM's base_model as the model itself; fixed here."""
    config = Gemma3TextConfig(**SHAPE, num_key_value_heads=1, head_dim=8, vocab_size=64)
    model = Gemma3ForCausalLM(config)
    expose_backbone(model)
    assert model.base_model is model.model
    out = model.base_model(input_ids=torch.tensor([[1, 2, 3]]))
    assert out.last_hidden_state.shape == (1, 3, 16)
    assert type(model).base_model_prefix == Gemma3ForCausalLM.base_model_prefix  # class untouched


def test_a_model_with_a_backbone_is_left_alone() -> None:
    model = LlamaForCausalLM(LlamaConfig(**SHAPE, num_key_value_heads=1, vocab_size=64))
    before = model.base_model
    expose_backbone(model)
    assert model.base_model is before is model.model
    assert "base_model_prefix" not in vars(model)
