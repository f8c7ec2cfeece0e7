"""Turning scores into next tokens: temperature, top-k, top-p, then greedy or seeded sampling.

Pure functions on (B, V) score tensors (log-space; ``-inf`` marks excluded tokens). The order
is that of a normal sampler: temperature, then top-k, then top-p. Sampling draws each row from
its own ``torch.Generator`` so that a record's tokens depend on its seed only, never on which
other prompts happen to share its batch (reruns and resumed runs reproduce it exactly).
"""

from __future__ import annotations

import math

import torch


def apply_top_k(scores: torch.Tensor, top_k: int) -> torch.Tensor:
    """Keep the ``top_k`` highest scores of each row (0 = keep all).

    Args:
        scores: (B, V) scores.
        top_k: number of tokens to keep, >= 0.
    """
    if top_k <= 0 or top_k >= scores.shape[-1]:
        return scores
    kth = torch.topk(scores, top_k, dim=-1).values[..., -1:]
    return scores.masked_fill(scores < kth, -math.inf)


def apply_top_p(scores: torch.Tensor, top_p: float) -> torch.Tensor:
    """Keep the smallest set of tokens whose probability mass reaches ``top_p`` (1 = keep all).

    The token that crosses the threshold is kept, so every row keeps at least its best token.

    Args:
        scores: (B, V) scores (already divided by the temperature).
        top_p: in (0, 1].
    """
    if top_p >= 1.0:
        return scores
    sorted_scores, order = torch.sort(scores, dim=-1, descending=True)
    probs = torch.softmax(sorted_scores, dim=-1)
    mass_before = torch.cumsum(probs, dim=-1) - probs
    drop_sorted = mass_before >= top_p
    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
    return scores.masked_fill(drop, -math.inf)


def warp(
    scores: torch.Tensor, temperature: float, top_k: int = 0, top_p: float = 1.0
) -> torch.Tensor:
    """Temperature, top-k and top-p applied to (B, V) scores; ``temperature`` must be > 0."""
    scores = scores / temperature if temperature != 1.0 else scores
    return apply_top_p(apply_top_k(scores, top_k), top_p)


def next_tokens(
    scores: torch.Tensor,
    temperature: float,
    top_k: int = 0,
    top_p: float = 1.0,
    generators: list[torch.Generator] | None = None,
) -> torch.Tensor:
    """Pick one token per row.

    Args:
        scores: (B, V) scores from a rule in ``contrastive``.
        temperature: 0 means greedy (argmax, ties to the lowest id); > 0 samples.
        top_k: top-k filter for sampling (0 = off).
        top_p: nucleus filter for sampling (1 = off).
        generators: one generator per row for sampling; None uses the global RNG.

    Returns:
        (B,) int64 token ids, on the device of ``scores``.
    """
    if temperature == 0.0:
        return scores.argmax(dim=-1)
    probs = torch.softmax(warp(scores, temperature, top_k, top_p), dim=-1)
    if generators is None:
        return torch.multinomial(probs, 1).squeeze(-1)
    rows = [torch.multinomial(probs[i], 1, generator=g) for i, g in enumerate(generators)]
    return torch.cat(rows)
