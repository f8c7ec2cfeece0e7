"""Batch surgery on Hugging Face KV caches for continuous batching.

The engine keeps one left-padded batch per model. Rows leave when they finish
(``select_rows``), new prompts join after their own prefill (``merge``: the shorter side is
padded on the left with zeros, which the attention mask hides), and padding columns that no
row uses any more are dropped (``trim_left``). Only full-attention layers (``DynamicLayer``)
can be merged or trimmed this way; ``supports_merging`` tells the engine when to fall back to
refilling only an empty batch.
"""

from __future__ import annotations

from typing import Any

import torch


def supports_merging(cache: Any) -> bool:
    """True when every layer is a plain full-attention ``DynamicLayer``."""
    from transformers.cache_utils import DynamicLayer

    layers = getattr(cache, "layers", None) or []
    return bool(layers) and all(type(layer) is DynamicLayer for layer in layers)


def select_rows(cache: Any, index: torch.Tensor) -> None:
    """Keep only the rows ``index`` (a (B',) long tensor) of every layer, in place."""
    cache.batch_select_indices(index)


def _pad_left(t: torch.Tensor, width: int) -> torch.Tensor:
    if width == 0:
        return t
    pad = t.new_zeros(*t.shape[:-2], width, t.shape[-1])
    return torch.cat([pad, t], dim=-2)


def merge(cache: Any, other: Any) -> None:
    """Append the rows of ``other`` to ``cache`` in place, left-padding the shorter one.

    Both caches must hold the same layers; keys and values are (B, H, T, D).
    """
    t_a, t_b = cache.get_seq_length(), other.get_seq_length()
    width = max(t_a, t_b)
    for layer, new in zip(cache.layers, other.layers, strict=True):
        layer.keys = torch.cat(
            [_pad_left(layer.keys, width - t_a), _pad_left(new.keys, width - t_b)]
        )
        layer.values = torch.cat(
            [_pad_left(layer.values, width - t_a), _pad_left(new.values, width - t_b)]
        )


def trim_left(cache: Any, columns: int) -> None:
    """Drop the first ``columns`` positions of every layer, in place."""
    if columns <= 0:
        return
    for layer in cache.layers:
        layer.keys = layer.keys[..., columns:, :]
        layer.values = layer.values[..., columns:, :]
