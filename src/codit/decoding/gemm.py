"""Linear layers on CPU with few rows: each product in whichever of three GEMMs is faster here.

A linear layer computes ``x @ W.T``. With few rows in ``x`` (a decoding step of a small batch) the
fastest GEMM depends on the CPU and its BLAS. Three ways are on offer (``WAYS``): ``F.linear``
(MKL's sgemm in torch's CPU build), the transposed product ``(W @ x.T).T`` (the same sgemm the
other way round) and oneDNN's matmul on the plain weight (``torch.ops.mkldnn._linear_pointwise``,
the kernel torch's own compiler emits for CPU linears). Measured with torch 2.13 (MKL 2024.2,
oneDNN 3.12), float32, one thread:

- on a 2-vCPU Xeon with AVX-512, MKL repacks the whole weight for ``x @ W.T`` and the transposed
  way was 1.1-1.9x faster at 8 to 32 rows on the qwen2.5-0.5b shapes, 0.4-1.0x at 2 to 4 (each
  GEMM alone, best of three);
- on a 2-vCPU AMD EPYC (Zen 5), where MKL takes slower code paths, oneDNN ran a whole forward's
  layers in 0.51-0.75x of ``F.linear``'s time at 1 to 8 rows and 0.47-0.64x at 16 to 64 (small
  and qwen2.5-0.5b shapes, weights streamed from memory as in decoding); the transposed way won
  over ``F.linear`` only for the 32k-row lm_head at 2 to 8 rows and the 4864x896 layer at 2 to 4;
  layers small enough to stay in cache (the ``tiny`` shape's) mostly kept ``F.linear``.

No fixed rule fits both, so the layers measure: for each weight shape and row count from 1 to 64
(``ROWS``) the first ``TRIALS`` calls each way, in turn, are timed inside the real forwards (each
weight streamed as it is in decoding, not hot from a loop), and the way with the fastest best call
is kept for that shape, row count and thread count. The choices live in one table per process
(``CHOICES``), so a new engine on the same shapes does not measure again. More rows (a prefill)
take ``F.linear``: oneDNN builds a kernel per row count (~3.5 ms each, measured on the EPYC),
which a prefill's ever-new row counts would pay again and again.

oneDNN's op is private to torch; it is used only where a probe call at import gives
``F.linear``'s result (``ONEDNN``), only with autograd off, and ``tests/test_gemm.py`` fails
loudly if it is gone from the torch the Makefile pins. Inside ``rows_first(layers)`` every listed
``torch.nn.Linear`` does this. The result equals ``F.linear``'s up to float rounding (the sums run
in another order), as results at different batch sizes already do. Modules whose ``forward`` is
already replaced on the instance (an accelerate hook, say) are left alone. On CUDA nothing here
is used.
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

ROWS = range(1, 65)  # row counts for which a layer chooses its GEMM
TRIALS = 3  # timed calls each way before a choice, per (shape, rows, threads)
Key = tuple[int, int, bool, int, int]  # out and in features, bias, rows, threads
Way = Callable[[torch.nn.Linear, torch.Tensor, int], torch.Tensor]


def _plain(self: torch.nn.Linear, x: torch.Tensor, rows: int) -> torch.Tensor:
    return F.linear(x, self.weight, self.bias)


def _transposed(self: torch.nn.Linear, x: torch.Tensor, rows: int) -> torch.Tensor:
    flat = x.reshape(rows, x.shape[-1]).t()
    if self.bias is None:
        out = torch.mm(self.weight, flat)
    else:
        out = torch.addmm(self.bias.unsqueeze(1), self.weight, flat)
    return out.t().contiguous().view(*x.shape[:-1], out.shape[0])


def _onednn_op() -> Callable[..., torch.Tensor] | None:
    """oneDNN's linear on a plain weight, if this torch has it and it gives ``F.linear``'s
    result on a probe; ``None`` otherwise."""
    if not torch.backends.mkldnn.is_available():
        return None
    try:
        op = torch.ops.mkldnn._linear_pointwise
        with torch.inference_mode():
            # fixed values: the probe must not move the global random generator
            x = torch.linspace(-1.0, 1.0, 24).view(3, 8)
            w, b = torch.linspace(-2.0, 1.0, 40).view(5, 8), torch.linspace(0.0, 1.0, 5)
            good = torch.allclose(op(x, w, b, "none", [], ""), F.linear(x, w, b), atol=1e-5)
    except (AttributeError, RuntimeError, TypeError):
        return None
    return op if good else None


ONEDNN = _onednn_op()


def _onednn(self: torch.nn.Linear, x: torch.Tensor, rows: int) -> torch.Tensor:
    assert ONEDNN is not None
    return ONEDNN(x.contiguous(), self.weight, self.bias, "none", [], "")


WAYS: tuple[Way, ...] = (_plain, _transposed) + ((_onednn,) if ONEDNN is not None else ())
NAMES = ("plain", "transposed", "onednn")


class Trial:
    """A layer's timed calls at one row count: best seconds and calls, per way."""

    def __init__(self, ways: int) -> None:
        self.best = [math.inf] * ways
        self.calls = [0] * ways

    def next_way(self) -> int:
        return self.calls.index(min(self.calls))

    def record(self, way: int, seconds: float) -> int | None:
        """Note one call; the chosen way once every way has had its trials."""
        self.calls[way] += 1
        self.best[way] = min(self.best[way], seconds)
        if min(self.calls) < TRIALS:
            return None
        return self.best.index(min(self.best))


CHOICES: dict[Key, int | Trial] = {}  # index into WAYS; one table per process


def _choosing(
    self: torch.nn.Linear,
    x: torch.Tensor,
    *,
    choices: dict[Key, int | Trial],
    clock: Callable[[], float],
    ways: tuple[Way, ...],
) -> torch.Tensor:
    features = x.shape[-1]
    rows = x.numel() // features if features else 0
    if rows not in ROWS or torch.is_grad_enabled():  # oneDNN's op has no autograd
        return F.linear(x, self.weight, self.bias)
    key = (self.weight.shape[0], features, self.bias is not None, rows, torch.get_num_threads())
    choice = choices.get(key)
    if isinstance(choice, int):
        return ways[choice](self, x, rows)
    if choice is None:
        choice = choices[key] = Trial(len(ways))
    way = choice.next_way()
    start = clock()
    out = ways[way](self, x, rows)
    chosen = choice.record(way, clock() - start)
    if chosen is not None:
        choices[key] = chosen
    return out


def linears(
    model: Any,
    clock: Callable[[], float] = time.perf_counter,
    choices: dict[Key, int | Trial] | None = None,
    ways: tuple[Way, ...] = WAYS,
) -> list[tuple[torch.nn.Linear, Any]]:
    """The model's float32 CPU ``nn.Linear`` layers that may choose their GEMM, each with its
    replacement ``forward`` (timed with ``clock``, choices kept in ``choices``, by default
    ``CHOICES``, among ``ways``); empty for a model elsewhere or in another dtype."""
    table = CHOICES if choices is None else choices
    out = []
    for module in model.modules():
        if type(module) is not torch.nn.Linear or "forward" in module.__dict__:
            continue
        weight = module.weight
        if weight.device.type == "cpu" and weight.dtype == torch.float32:
            forward = functools.partial(_choosing, choices=table, clock=clock, ways=ways)
            out.append((module, types.MethodType(forward, module)))
    return out


def chosen(choices: dict[Key, int | Trial] | None = None) -> dict[int, tuple[int, ...]]:
    """Per row count, how many (shape, threads) chose each way (counts in the order of ``NAMES``)
    in ``choices`` (default ``CHOICES``); those still on trial are left out."""
    out: dict[int, list[int]] = {}
    for (_, _, _, rows, _), choice in (CHOICES if choices is None else choices).items():
        if isinstance(choice, int):
            out.setdefault(rows, [0] * len(NAMES))[choice] += 1
    return {rows: tuple(n) for rows, n in sorted(out.items())}


@contextlib.contextmanager
def rows_first(layers: list[tuple[torch.nn.Linear, Any]]) -> Iterator[None]:
    """The listed layers choose their GEMM inside the block, take their own after it."""
    for module, forward in layers:
        module.__dict__["forward"] = forward
    try:
        yield
    finally:
        for module, forward in layers:
            if module.__dict__.get("forward") is forward:
                del module.__dict__["forward"]
