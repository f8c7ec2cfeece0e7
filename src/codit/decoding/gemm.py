"""Linear layers on CPU with few rows: ``x @ W.T`` or ``(W @ x.T).T``, whichever is faster here.

A linear layer computes ``x @ W.T``. With few rows in ``x`` (a decoding step of a small batch, a
short prompt) which orientation of the GEMM runs faster depends on the CPU and its BLAS: on a
2-vCPU Xeon with AVX-512 (torch 2.13, MKL 2024.2, float32, one thread) MKL repacks the whole
weight for ``x @ W.T`` and ``W @ x.T`` was 1.1-1.9x faster at 8 to 32 rows on the qwen2.5-0.5b
shapes and 0.4-1.0x at 2 to 4; on a 2-vCPU AMD EPYC (Zen 5, same build) the same products were
mostly slower the transposed way (0.5-1.0x) except the 32k-row lm_head at 2 to 8 rows (1.3-3.2x)
and the 4864x896 layer at 2 to 4 rows (1.6-1.7x), each GEMM alone, best of three. No fixed
window fits both, so the layers measure: for each weight shape and row count from 2 to 64
(``ROWS``) the first ``TRIALS`` calls each way, alternating, are timed inside the real forwards
(each weight streamed as it is in decoding, not hot from a loop), and the way with the faster
best call is kept for that shape, row count and thread count. One row is left out: a
matrix-vector product either way (on the Xeon the same time; on the EPYC the small shape's
direct decoding at batch 1 ran 1.002x HF static with one row in the window, 1.015x without it
and 1.020x with every layer on ``F.linear``, medians of 6 paired rounds), where a trial only
picks noise. The choices live in one table per process (``CHOICES``), so a new engine on the
same shapes does not measure again. Other row counts use ``F.linear``, unchanged.

Inside ``rows_first(layers)`` every listed ``torch.nn.Linear`` does this. The result equals
``F.linear``'s up to float rounding (the sums run in another order), as results at different
batch sizes already do. Modules whose ``forward`` is already replaced on the instance (an
accelerate hook, say) are left alone. On CUDA nothing here is used.
"""

from __future__ import annotations

import contextlib
import functools
import math
import time
import types
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn.functional as F

ROWS = range(2, 65)  # row counts for which a layer chooses its orientation
TRIALS = 3  # timed calls each way before a choice, per (shape, rows, threads)
Key = tuple[int, int, bool, int, int]  # out and in features, bias, rows, threads


class Trial:
    """A layer's timed calls at one row count: best seconds and calls, plain and transposed."""

    def __init__(self) -> None:
        self.best = [math.inf, math.inf]
        self.calls = [0, 0]

    def next_way(self) -> int:
        return 0 if self.calls[0] <= self.calls[1] else 1

    def record(self, way: int, seconds: float) -> bool | None:
        """Note one call; the choice (``True``: transposed) once both ways have had their trials."""
        self.calls[way] += 1
        self.best[way] = min(self.best[way], seconds)
        if min(self.calls) < TRIALS:
            return None
        return self.best[1] < self.best[0]


CHOICES: dict[Key, bool | Trial] = {}  # True: transposed; one table per process


def _transposed(self: torch.nn.Linear, x: torch.Tensor, rows: int) -> torch.Tensor:
    flat = x.reshape(rows, x.shape[-1]).t()
    if self.bias is None:
        out = torch.mm(self.weight, flat)
    else:
        out = torch.addmm(self.bias.unsqueeze(1), self.weight, flat)
    return out.t().contiguous().view(*x.shape[:-1], out.shape[0])


def _choosing(
    self: torch.nn.Linear,
    x: torch.Tensor,
    *,
    choices: dict[Key, bool | Trial],
    clock: Callable[[], float],
) -> torch.Tensor:
    features = x.shape[-1]
    rows = x.numel() // features if features else 0
    if rows not in ROWS:
        return F.linear(x, self.weight, self.bias)
    out_features = self.weight.shape[0]
    key = (out_features, features, self.bias is not None, rows, torch.get_num_threads())
    choice = choices.get(key)
    if choice is True:
        return _transposed(self, x, rows)
    if choice is False:
        return F.linear(x, self.weight, self.bias)
    trial = choices[key] = choice or Trial()
    way = trial.next_way()
    start = clock()
    out = _transposed(self, x, rows) if way else F.linear(x, self.weight, self.bias)
    chosen = trial.record(way, clock() - start)
    if chosen is not None:
        choices[key] = chosen
    return out


def linears(
    model: Any,
    clock: Callable[[], float] = time.perf_counter,
    choices: dict[Key, bool | Trial] | None = None,
) -> list[tuple[torch.nn.Linear, Any]]:
    """The model's float32 CPU ``nn.Linear`` layers that may take the transposed product, each
    with its replacement ``forward`` (timed with ``clock``, choices kept in ``choices``, by
    default ``CHOICES``); empty for a model elsewhere or in another dtype."""
    table = CHOICES if choices is None else choices
    out = []
    for module in model.modules():
        if type(module) is not torch.nn.Linear or "forward" in module.__dict__:
            continue
        weight = module.weight
        if weight.device.type == "cpu" and weight.dtype == torch.float32:
            forward = functools.partial(_choosing, choices=table, clock=clock)
            out.append((module, types.MethodType(forward, module)))
    return out


def chosen(choices: dict[Key, bool | Trial] | None = None) -> dict[int, tuple[int, int]]:
    """Per row count, how many (shape, threads) chose (plain, transposed) in ``choices``
    (default ``CHOICES``); those still on trial are left out."""
    out: dict[int, list[int]] = {}
    for (_, _, _, rows, _), choice in (CHOICES if choices is None else choices).items():
        if isinstance(choice, bool):
            out.setdefault(rows, [0, 0])[choice] += 1
    return {rows: (n[0], n[1]) for rows, n in sorted(out.items())}


@contextlib.contextmanager
def rows_first(layers: list[tuple[torch.nn.Linear, Any]]) -> Iterator[None]:
    """The listed layers choose their orientation inside the block, take their own after it."""
    for module, forward in layers:
        module.__dict__["forward"] = forward
    try:
        yield
    finally:
        for module, forward in layers:
            if module.__dict__.get("forward") is forward:
                del module.__dict__["forward"]
