"""Turning scores into next tokens: temperature, top-k, top-p, then greedy or seeded sampling.

Pure functions on (B, V) score tensors (log-space; ``-inf`` marks excluded tokens). The order
is that of a normal sampler: temperature, then top-k, then top-p (on the top-k-renormalised
distribution).

``sample`` is the engine's path: one vectorised draw for the whole batch, every setting a
per-row tensor. The randomness is counter-based: token ``j`` of the row drawing its ``step``-th
token gets the uniform ``hash(seed, step, j)``, computed with integer tensor ops only (per-row
keys in int64 without overflow, the B x V pass in int32 with products modulo 2**32), so CPU and
CUDA give the same bits, and the row takes
``argmax(scores / T - log(-log u))`` (Gumbel-max, i.e. the exponential race
``argmax p / E`` with ``E = -log u``), which is an exact draw from ``softmax(scores / T)``. A
row's token therefore depends only on its own seed, step and scores, never on its neighbours,
the batch size, the order of rows or a generator's state: reruns, resumed runs and rows that
join a batch midway reproduce it exactly. Top-k/top-p run only when the caller says a row
uses them; on CPU they sort only the best ``CANDIDATES`` tokens of a row when that settles the
cut (see ``filter_top_k_top_p``).

``next_tokens`` (per-row ``torch.Generator`` loop) and the scalar warpers are the older path,
kept for the callers that still pass scalar settings.
"""

from __future__ import annotations

import functools
import math

import torch

# ---- the counter-based noise -----------------------------------------------------------------

_M32 = 0xFFFFFFFF


def _signed32(c: int) -> int:
    """``c`` or ``c - 2**32``: the same multiplier mod 2**32, below 2**31 in magnitude, so a
    product with a 32-bit value stays inside int64 (exact, no wrap-around)."""
    return c - (1 << 32) if c >= 1 << 31 else c


# lowbias32 (C. Wellons, "hash prospector"): a 32-bit bijection with low avalanche bias.
_C1 = _signed32(0x7FEB352D)
_C2 = _signed32(0x846CA68B)


def mix32(x: torch.Tensor) -> torch.Tensor:
    """lowbias32 on int64 tensors holding values in [0, 2**32); returns the same range.

    Shifts act on non-negative values only (torch has no unsigned shift) and every product is
    masked back to 32 bits, so the result is exact on any device.
    """
    x = x ^ (x >> 16)
    x = (x * _C1) & _M32
    x = x ^ (x >> 15)
    x = (x * _C2) & _M32
    return x ^ (x >> 16)


def row_keys(seeds: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
    """(B,) 32-bit keys from (B,) int64 seeds and steps (all 64 bits of each enter)."""
    k = mix32(((seeds >> 32) & _M32) ^ 0x9E3779B9)
    k = mix32(k ^ (seeds & _M32))
    k = mix32(k ^ ((steps >> 32) & _M32))
    return mix32(k ^ (steps & _M32))


def _as_int32(x: torch.Tensor) -> torch.Tensor:
    """int64 values in [0, 2**32) as int32 with the same 32 bits (explicit, not a cast's UB)."""
    return torch.where(x >= 1 << 31, x - (1 << 32), x).to(torch.int32)


@functools.lru_cache(maxsize=8)
def _token_hashes(vocab: int, device: torch.device) -> torch.Tensor:
    """(V,) int32 hashed token indices, made once per vocabulary size and device."""
    return _as_int32(mix32(torch.arange(vocab, dtype=torch.int64, device=device) + 0x632BE5AB))


def noise_bits(seeds: torch.Tensor, steps: torch.Tensor, vocab: int) -> torch.Tensor:
    """(B, V) int32 in [0, 2**23): the top 23 bits of ``lowbias32(hash(j) ^ key(seed, step))``
    without its last xorshift (which does not touch the top 16 bits).

    This is the one B x V integer pass of a draw, so it runs on int32 (half the memory
    traffic of int64): there the products wrap modulo 2**32 (two's complement, as on every
    device torch supports; a test checks the bits against plain Python integers) and each
    arithmetic right shift is masked to act as an unsigned one.
    """
    x = _token_hashes(vocab, seeds.device) ^ _as_int32(row_keys(seeds, steps)).unsqueeze(1)
    x ^= (x >> 16) & 0xFFFF
    x *= _C1
    x ^= (x >> 15) & 0x1FFFF
    x *= _C2
    return (x >> 9) & 0x7FFFFF


def uniforms(seeds: torch.Tensor, steps: torch.Tensor, vocab: int) -> torch.Tensor:
    """(B, V) float32 uniforms in (0, 1): ``u[b, j] = hash(seeds[b], steps[b], j)``.

    23 bits per draw, centred in their bucket: ``m + 0.5`` with ``m < 2**23`` is exact in
    float32 (24 bits would round the top bucket up to 1.0, whose ``log(-log u)`` is ``-inf``).
    """
    return (noise_bits(seeds, steps, vocab) + 0.5).mul_(1.0 / (1 << 23))


# ---- top-k / top-p on per-row tensors ---------------------------------------------------------

CANDIDATES = 1024
"""How many best tokens ``sample`` sorts on CPU before it falls back to a full sort."""


def _cutoffs(
    sorted_vals: torch.Tensor, logz: torch.Tensor, k: torch.Tensor, top_p: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row lowest kept value and how many sorted entries are kept.

    Args:
        sorted_vals: (B, C) each row's C best scores, descending.
        logz: (B,) log of the mass the top-p cut is measured against.
        k: (B,) top-k (V when off).
        top_p: (B,) nucleus mass (1 = off).
    """
    rank = torch.arange(sorted_vals.shape[1], device=sorted_vals.device)
    in_k = rank < k.unsqueeze(1)
    probs = torch.exp(sorted_vals - logz.unsqueeze(1)).masked_fill(~in_k, 0.0)
    before = torch.cumsum(probs, dim=-1) - probs
    # top_p >= 1 keeps everything in the top k, whatever the rounding of the cumulative sum
    keep = in_k & ((before < top_p.unsqueeze(1)) | (top_p.unsqueeze(1) >= 1.0))
    n = keep.sum(-1).clamp(min=1)
    return sorted_vals.gather(1, (n - 1).unsqueeze(1)).squeeze(1), n


def _lse_top(sorted_vals: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    rank = torch.arange(sorted_vals.shape[1], device=sorted_vals.device)
    return torch.logsumexp(sorted_vals.masked_fill(rank >= k.unsqueeze(1), -math.inf), dim=-1)


def filter_top_k_top_p(
    logits: torch.Tensor, top_k: torch.Tensor, top_p: torch.Tensor
) -> torch.Tensor:
    """``-inf`` outside each row's top-k, then outside the nucleus of what is left.

    Both cuts are value thresholds (ties with the last kept token are kept), so the kept set
    does not depend on how the sort broke ties. On CPU only the ``CANDIDATES`` best tokens are
    sorted (``topk``); a row whose cut cannot be settled inside them (top-k above the cap, or a
    nucleus wider than the candidates) is redone with a full sort. On other devices the whole
    row is sorted, which needs no host sync and keeps the step capturable in a CUDA graph.

    Args:
        logits: (B, V) scores already divided by the temperature.
        top_k: (B,) long, 0 = off.
        top_p: (B,) float, 1 = off.
    """
    vocab = logits.shape[1]
    k = torch.where(top_k > 0, top_k.clamp(max=vocab), vocab)
    p = top_p.to(logits.dtype)
    cap = min(CANDIDATES, vocab)
    if logits.device.type == "cpu" and cap < vocab:
        vals = torch.topk(logits, cap, dim=-1).values
        logz = torch.where(k <= cap, _lse_top(vals, k), torch.logsumexp(logits, dim=-1))
        cut, n = _cutoffs(vals, logz, k, p)
        settled = (k <= cap) | ((k >= vocab) & (n < cap))
        if not bool(settled.all()):  # host branch: free on CPU
            redo = (~settled).nonzero().squeeze(1)
            full = torch.sort(logits[redo], dim=-1, descending=True).values
            cut[redo] = _cutoffs(full, _lse_top(full, k[redo]), k[redo], p[redo])[0]
    else:
        vals = torch.sort(logits, dim=-1, descending=True).values
        cut = _cutoffs(vals, _lse_top(vals, k), k, p)[0]
    return logits.masked_fill(logits < cut.unsqueeze(1), -math.inf)


# ---- the draw ---------------------------------------------------------------------------------


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
    """One token per row, drawn for the whole batch at once.

    Args:
        scores: (B, V) float log-space scores (``-inf`` = excluded, never drawn).
        temperature: (B,) float; 0 makes the row greedy (argmax, ties to the lowest id).
        top_k: (B,) long, 0 = off.
        top_p: (B,) float, 1 = off.
        seeds: (B,) int64 row seeds (``row_seed(seed, key)``).
        steps: (B,) int64 index of the token being drawn in each row's response.
        filtering: host-side switch; False skips all top-k/top-p work (the caller knows
            whether any row asked for it).

    Returns:
        (B,) long token ids on the scores' device. No host sync on CUDA; on CPU a batch of
        greedy rows skips the noise (a host check costs nothing there).
    """
    greedy = scores.argmax(dim=-1)
    hot = temperature > 0
    if scores.device.type == "cpu" and not bool(hot.any()):
        return greedy
    t = torch.where(hot, temperature, 1.0).to(scores.dtype).unsqueeze(1)
    logits = scores / t
    if filtering:
        logits = filter_top_k_top_p(logits, top_k, top_p)
    log_e = uniforms(seeds, steps, scores.shape[1]).log_().neg_().log_()  # log of Exp(1)
    drawn = logits.sub_(log_e).argmax(dim=-1)  # logits is a fresh tensor here
    return torch.where(hot, drawn, greedy)


# ---- the scalar path (older callers) ----------------------------------------------------------


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
    """Pick one token per row with scalar settings and per-row generators (older path).

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
