"""Linear layers on CPU with few rows: the product taken the other way round, ``(W @ x.T).T``.

A linear layer computes ``x @ W.T``. With few rows in ``x`` (a decoding step of a small batch,
a short prompt) MKL's GEMM in that orientation repacks the whole weight on every call; asking
for ``W @ x.T`` instead packs the few rows and streams the weight once. Measured here (2-vCPU
Xeon with AVX-512, torch 2.13 with MKL 2024.2, float32, one thread; each GEMM alone, best of
two): on the qwen2.5-0.5b shapes (896x896, 4864x896, 896x4864, 151936x896) 1.1-1.7x faster
at 8 rows, 1.2-1.9x at 16 and 32; at 2 to 4 rows 0.4-1.0x (slower), from 64 rows on about
even or slower; one row is a matrix-vector product either way. Hence the window ``ROWS``.

Inside ``rows_first(linears)`` every listed ``torch.nn.Linear`` computes a call with
``ROWS`` rows this way and any other call with ``F.linear``, unchanged. The result equals
``F.linear``'s up to float rounding (the sums run in another order), as results at different
batch sizes already do. Modules whose ``forward`` is already replaced on the instance (an
accelerate hook, say) are left alone. On CUDA nothing here is used.
"""

from __future__ import annotations

import contextlib
import types
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F

ROWS = range(8, 33)  # rows per call that take the transposed product


def _rows_first(self: torch.nn.Linear, x: torch.Tensor) -> torch.Tensor:
    features = x.shape[-1]
    rows = x.numel() // features if features else 0
    if rows not in ROWS:
        return F.linear(x, self.weight, self.bias)
    flat = x.reshape(rows, features).t()
    if self.bias is None:
        out = torch.mm(self.weight, flat)
    else:
        out = torch.addmm(self.bias.unsqueeze(1), self.weight, flat)
    return out.t().contiguous().view(*x.shape[:-1], out.shape[0])


def linears(model: Any) -> list[tuple[torch.nn.Linear, Any]]:
    """The model's float32 CPU ``nn.Linear`` layers that may take the transposed product, each
    with its replacement ``forward``; empty for a model elsewhere or in another dtype."""
    out = []
    for module in model.modules():
        if type(module) is not torch.nn.Linear or "forward" in module.__dict__:
            continue
        weight = module.weight
        if weight.device.type == "cpu" and weight.dtype == torch.float32:
            out.append((module, types.MethodType(_rows_first, module)))
    return out


@contextlib.contextmanager
def rows_first(layers: list[tuple[torch.nn.Linear, Any]]) -> Iterator[None]:
    """The listed layers take the transposed product inside the block, their own after it."""
    for module, forward in layers:
        module.__dict__["forward"] = forward
    try:
        yield
    finally:
        for module, forward in layers:
            if module.__dict__.get("forward") is forward:
                del module.__dict__["forward"]
