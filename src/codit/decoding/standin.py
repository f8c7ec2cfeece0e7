"""Stand-ins for ``sampling.sample`` and ``stops.StopWatch`` until the sampling helper's land.

Same signatures as contracts.md; the engine imports the real ones when they exist.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

_M1 = 0x5851F42D4C957F2D  # odd 64-bit constants below 2**63 (int64 tensors wrap)
_M2 = 0x14057B7EF767814F
_GOLD = 0x1E3779B97F4A7C15


def _mix(x: torch.Tensor) -> torch.Tensor:
    """A splitmix64-style finaliser on int64 (wrapping arithmetic, logical shifts by masking)."""
    x = x ^ ((x >> 31) & ((1 << 33) - 1))
    x = x * _M1
    x = x ^ ((x >> 29) & ((1 << 35) - 1))
    x = x * _M2
    return x ^ ((x >> 32) & ((1 << 32) - 1))


def uniform(seeds: torch.Tensor, steps: torch.Tensor, vocab: int) -> torch.Tensor:
    """(B, V) float64 in (0, 1), a pure function of (seed, step, token index)."""
    idx = torch.arange(vocab, device=seeds.device, dtype=torch.int64)
    x = _mix(_mix(seeds.unsqueeze(1) * _GOLD + steps.unsqueeze(1)) + idx * _GOLD)
    bits = (x >> 11) & ((1 << 53) - 1)
    return (bits.double() + 0.5) / float(1 << 53)


def sample(
    scores: torch.Tensor,
    temperature: torch.Tensor,
    top_k: torch.Tensor,
    top_p: torch.Tensor,
    seeds: torch.Tensor,
    steps: torch.Tensor,
    *,
    filtering: bool,
) -> torch.Tensor:
    """Gumbel-max over counter-based noise; temperature 0 rows take the argmax."""
    greedy = scores.argmax(dim=-1)
    t = temperature.to(scores.dtype).clamp(min=1e-6).unsqueeze(1)
    warped = scores / t
    if filtering:
        vocab = scores.shape[-1]
        k = torch.where(top_k > 0, top_k, torch.full_like(top_k, vocab)).clamp(max=vocab)
        ordered, order = torch.sort(warped, dim=-1, descending=True)
        kth = ordered.gather(1, (k - 1).unsqueeze(1))
        warped = warped.masked_fill(warped < kth, -math.inf)
        ordered = ordered.masked_fill(ordered < kth, -math.inf)
        probs = torch.softmax(ordered, dim=-1)
        before = torch.cumsum(probs, dim=-1) - probs
        drop = before >= top_p.to(probs.dtype).unsqueeze(1)
        warped = warped.masked_fill(torch.zeros_like(drop).scatter(1, order, drop), -math.inf)
    gumbel = -torch.log(-torch.log(uniform(seeds, steps, scores.shape[-1])))
    drawn = (warped.double() + gumbel).argmax(dim=-1)
    return torch.where(temperature > 0, drawn, greedy)


class StopWatch:
    """Finds stop strings in a row's text, looking only at a tail window of tokens."""

    def __init__(self, tokenizer: Any, stops: Sequence[str]):
        self.tokenizer = tokenizer
        self.stops = tuple(stops)
        self.window = max((len(s) for s in self.stops), default=0) + 8

    def hit(self, tokens: list[int]) -> bool:
        if not self.stops:
            return False
        tail = self.tokenizer.decode(tokens[-self.window :], skip_special_tokens=True)
        return any(s in tail for s in self.stops)

    def cut(self, text: str) -> str:
        cuts = [i for i in (text.find(s) for s in self.stops) if i >= 0]
        return text[: min(cuts)] if cuts else text
