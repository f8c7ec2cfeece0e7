"""Attention over the engine's cohort K/V buffers, plugged into transformers models.

The engine runs a model with ``use_cache=False`` and its own attention function, registered
with the public ``AttentionInterface`` and selected per forward through the model config's
``_attn_implementation`` (``slot_attention`` swaps it in and restores the model's own choice
afterwards, so the model behaves as before outside the engine). The step's state travels in
the ``codit_slots`` keyword, which transformers hands on untouched to every attention call:

- ``Decode``: one token per batch row; the batch is cut into ``Segment``s, one per K/V cohort
  (``cohorts``). Each row's K/V is written at its own position in its cohort's buffer and its
  query attends to the cohort's first ``span`` positions (a strided view, one SDPA per cohort),
  with a (n, 1, 1, span) mask that hides other rows' lengths and, for sliding-window layers,
  the positions that fell out of the window.
- ``PrefillBatch``: several short prompts, left-padded to one width, each written into its
  own row of its cohort; they attend only to their own tokens.
- ``Prefill``: a chunk of one long prompt, written into its row at ``start``; the chunk attends
  to the row's first ``start + C`` positions (a view, no copy) with a causal mask.

Grouped-query attention is done without repeating K/V: the query (B, H, T, d) is viewed as
(B, kv_heads, group * T, d), one SDPA "head" per K/V head. Because no ``Cache`` is passed, the
``cache`` / ``past_key_values`` keyword rename of transformers 5.24 (old name removed in 5.40)
never comes up; ``test_engine_private_apis`` fails loudly if the keyword pass-through or the
mask early-exit for custom implementations this module relies on changes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

NAME = "codit_slots"


@dataclass
class Segment:
    """Batch rows ``start .. start + n - 1``: the rows of one cohort, in its buffer order.

    Attributes:
        cohort: the cohort's id in the model's ``CohortCache``.
        start: its first batch row.
        positions: (n,) long, where each row's new token goes (its length before the step).
        span: how many positions its queries read (>= its longest row after the step).
        uniform: the one position every row writes, when the host knows they all hold the
            same length (eager steps only: a captured graph must not bake it in). Then the
            write is a slice and, when ``span`` is that position + 1, no mask is needed.
        masks: (window, dtype) -> (n, 1, 1, span) additive mask (or None), built once per step.
    """

    cohort: int
    start: int
    positions: torch.Tensor
    span: int
    uniform: int | None = None
    masks: dict[tuple[int, torch.dtype], torch.Tensor | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.n = self.positions.shape[0]
        self.stop = self.start + self.n
        self.rows = slice(self.start, self.stop)
        self._index: torch.Tensor | None = None

    @property
    def index(self) -> torch.Tensor:
        """(n,) 0 .. n-1: the rows of the cohort's buffer, for the indexed write."""
        if self._index is None:
            self._index = torch.arange(self.n, device=self.positions.device)
        return self._index

    def mask(self, window: int, dtype: torch.dtype) -> torch.Tensor | None:
        key = (window, dtype)
        if key not in self.masks:
            p = self.uniform
            if p is not None and self.span == p + 1 and (window <= 0 or p < window):
                self.masks[key] = None  # every row reads every position it holds
            else:
                ok = decode_mask(self.positions, self.span, window)
                self.masks[key] = additive(ok, dtype)
        return self.masks[key]


@dataclass
class Decode:
    """One decoding step: one token per batch row, the batch cut into cohort segments."""

    cache: Any
    segments: list[Segment]


@dataclass
class Prefill:
    """A chunk of one prompt: positions ``start .. start + C - 1`` of row ``row`` of ``cohort``."""

    cache: Any
    cohort: int
    row: int
    start: int
    size: int
    masks: dict[int, torch.Tensor] = field(default_factory=dict)

    def mask(self, window: int, device: torch.device) -> torch.Tensor:
        if window not in self.masks:
            self.masks[window] = prefill_mask(self.start, self.size, window, device)
        return self.masks[window]


@dataclass
class Write:
    """Where the real tokens of a ``PrefillBatch`` go in one cohort: (N,) long each."""

    cohort: int
    rows: torch.Tensor  # batch row of the chunk
    columns: torch.Tensor  # column in the chunk
    targets: torch.Tensor  # row in the cohort's buffers
    positions: torch.Tensor  # position in that row


@dataclass
class PrefillBatch:
    """Several whole prompts in one forward, left-padded to a common width ``L``.

    Row ``i``'s tokens sit in columns ``offsets[i] .. L-1`` and go to positions
    ``0 .. L-1-offsets[i]`` of its row in its cohort (``writes``); they attend only to each
    other (the prompt fits in one chunk, so nothing is read from the cache).
    """

    cache: Any
    offsets: torch.Tensor
    writes: list[Write]
    masks: dict[int, torch.Tensor] = field(default_factory=dict)

    def mask(self, window: int, width: int) -> torch.Tensor:
        """(n, width, width) bool: causal over the row's real tokens, pads see themselves."""
        if window not in self.masks:
            col = torch.arange(width, device=self.offsets.device)
            q, k = col.view(1, -1, 1), col.view(1, 1, -1)
            ok = (k <= q) & (k >= self.offsets.view(-1, 1, 1))
            if window > 0:
                ok &= k > q - window
            self.masks[window] = ok | (k == q)
        return self.masks[window]


def decode_mask(positions: torch.Tensor, span: int, window: int = 0) -> torch.Tensor:
    """(B, 1, 1, span) bool: position j is readable by a query at ``positions`` (B,).

    Causal (``j <= p``) and, for a sliding window ``w > 0``, ``j > p - w`` (transformers'
    ``sliding_window_overlay``: the query and the ``w - 1`` tokens before it).
    """
    j = torch.arange(span, device=positions.device)
    p = positions.unsqueeze(1)
    ok = j <= p
    if window > 0:
        ok &= j > p - window
    return ok[:, None, None, :]


def prefill_mask(start: int, size: int, window: int, device: torch.device) -> torch.Tensor:
    """(size, start + size) bool causal mask for queries at ``start .. start + size - 1``."""
    q = torch.arange(start, start + size, device=device).unsqueeze(1)
    j = torch.arange(start + size, device=device)
    ok = j <= q
    if window > 0:
        ok &= j > q - window
    return ok


def additive(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """A bool mask as 0 / -inf in ``dtype`` (SDPA on CPU runs ~3x faster with it)."""
    # kernels with scalar arguments only: no host-to-device copy, so CUDA graphs can capture it
    return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill_(
        ~mask, float("-inf")
    )


def _attend(
    query: torch.Tensor,
    keys: torch.Tensor,
    values: torch.Tensor,
    mask: torch.Tensor | None,
    scaling: float | None,
    softcap: float | None,
) -> torch.Tensor:
    """SDPA: query (B, Hkv, Q, d), keys/values (B, Hkv, T, d), additive mask broadcastable
    (None: every query reads every position)."""
    if softcap is None:
        return torch.nn.functional.scaled_dot_product_attention(
            query, keys, values, attn_mask=mask, scale=scaling
        )
    scale = scaling if scaling is not None else query.shape[-1] ** -0.5
    scores = torch.matmul(query, keys.transpose(-1, -2)) * scale
    scores = torch.tanh(scores / softcap) * softcap
    if mask is not None:
        scores = scores + mask
    probs = torch.softmax(scores.float(), dim=-1).to(values.dtype)
    return torch.matmul(probs, values)


def slot_attention_forward(
    module: Any,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,  # noqa: ARG001 - inference only
    sliding_window: int | None = None,
    softcap: float | None = None,
    codit_slots: Decode | Prefill | PrefillBatch | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """The attention function transformers calls: query (B, H, T, d), key/value (B, Hkv, T, d).

    Returns (B, T, H, d), as transformers' own attention functions do.
    """
    if codit_slots is None:
        raise RuntimeError(
            f"the {NAME} attention runs only inside codit's engine (no slot state was passed)"
        )
    batch, heads, length, dim = query.shape
    kv_heads = key.shape[1]
    group = heads // kv_heads
    window = int(sliding_window or 0)
    layer = module.layer_idx
    cache = codit_slots.cache
    q = query.reshape(batch, kv_heads, group * length, dim)
    if isinstance(codit_slots, Decode):
        outs = []
        for seg in codit_slots.segments:
            keys_buf, values_buf = cache.buffers(seg.cohort, layer, key)
            rows, n, span = seg.rows, seg.n, seg.span
            if seg.uniform is not None:  # a slice write: no index tensors
                keys_buf[:n, :, seg.uniform] = key[rows, :, 0]
                values_buf[:n, :, seg.uniform] = value[rows, :, 0]
            else:
                keys_buf[seg.index, :, seg.positions] = key[rows, :, 0]
                values_buf[seg.index, :, seg.positions] = value[rows, :, 0]
            mask = seg.mask(window, query.dtype)
            outs.append(
                _attend(
                    q[rows],
                    keys_buf[:n, :, :span],
                    values_buf[:n, :, :span],
                    mask,
                    scaling,
                    softcap,
                )
            )
        out = outs[0] if len(outs) == 1 else torch.cat(outs)
    elif isinstance(codit_slots, PrefillBatch):
        batched = codit_slots
        for w in batched.writes:
            keys_buf, values_buf = cache.buffers(w.cohort, layer, key)
            keys_buf[w.targets, :, w.positions] = key[w.rows, :, w.columns]
            values_buf[w.targets, :, w.positions] = value[w.rows, :, w.columns]
        causal = batched.mask(window, length)
        mask = causal.unsqueeze(1).expand(batch, group, length, length)
        mask = additive(mask.reshape(batch, 1, group * length, length), query.dtype)
        out = _attend(q, key, value, mask, scaling, softcap)
    else:
        chunk = codit_slots
        keys_buf, values_buf = cache.buffers(chunk.cohort, layer, key)
        r, start, size = chunk.row, chunk.start, chunk.size
        keys_buf[r, :, start : start + size] = key[0]
        values_buf[r, :, start : start + size] = value[0]
        keys = keys_buf[r : r + 1, :, : start + size]
        values = values_buf[r : r + 1, :, : start + size]
        causal = chunk.mask(window, key.device)
        mask = causal.unsqueeze(0).expand(group, size, start + size).reshape(group * size, -1)
        out = _attend(q, keys, values, additive(mask, query.dtype), scaling, softcap)
    out = out.view(batch, heads, length, dim).transpose(1, 2).contiguous()
    return out, None


def register() -> None:
    """Register the slot attention with transformers (idempotent)."""
    from transformers import AttentionInterface

    AttentionInterface.register(NAME, slot_attention_forward)


@contextlib.contextmanager
def slot_attention(model: Any) -> Iterator[None]:
    """Run ``model`` with the slot attention inside the block, its own attention after it."""
    config = model.config
    before = config._attn_implementation
    config._attn_implementation = NAME
    try:
        yield
    finally:
        config._attn_implementation = before
