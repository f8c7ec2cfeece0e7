"""Admission: prompts prefilled into their rows of the K/V cohorts, alone or in groups.

A long prompt (more than ``chunk`` tokens) is prefilled alone, chunk by chunk, each chunk
attending to what its row already holds; short prompts of similar length go through one
left-padded forward (padding at most ~25% of the group's tokens), each written into its own
row. Nothing here touches a running row. ``forward(model index, ids, positions, state)`` runs
one model with the slot attention and returns its last-position logits (n, V).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from codit.decoding import attention
from codit.decoding.rows import Row

Forward = Callable[[int, torch.Tensor, torch.Tensor, Any], torch.Tensor]


def groups(rows: list[Row], chunk: int) -> list[list[Row]]:
    """Long prompts alone (chunked); short ones in groups that pad at most ~25%."""
    out: list[list[Row]] = []
    current: list[Row] = []
    total = 0
    budget = 8 * chunk  # tokens per batched forward, padding included
    for row in sorted(rows, key=lambda r: len(r.prompt)):
        n = len(row.prompt)
        if n > chunk:
            out.append([row])
            continue
        width = (len(current) + 1) * n
        if current and (width > 1.25 * (total + n) or width > budget):
            out.append(current)
            current, total = [], 0
        current.append(row)
        total += n
    if current:
        out.append(current)
    return out


def _inner(row: Row) -> int:
    return next(i for i, r in enumerate(row.cohort.rows) if r is row)


def prefill_long(
    forward: Forward, caches: list[Any], devices: list[torch.device], row: Row, chunk: int
) -> list[torch.Tensor]:
    """Write the row's prompt into its cohort row, chunk by chunk; (1, V) logits per model."""
    ids, n, inner = row.prompt, len(row.prompt), _inner(row)
    out = []
    for i, dev in enumerate(devices):
        full = torch.tensor(ids, device=dev).unsqueeze(0)
        logits = None
        for start in range(0, n, chunk):
            size = min(chunk, n - start)
            state = attention.Prefill(caches[i], row.cohort.id, inner, start, size)
            positions = torch.arange(start, start + size, device=dev).unsqueeze(0)
            logits = forward(i, full[:, start : start + size], positions, state)
        assert logits is not None
        out.append(logits)
    row.length = n
    return out


def prefill_batch(
    forward: Forward, caches: list[Any], devices: list[torch.device], rows: list[Row], pad_id: int
) -> list[torch.Tensor]:
    """Prefill short prompts together, left-padded; (n, V) logits per model."""
    lengths = [len(r.prompt) for r in rows]
    width = max(lengths)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    positions = torch.zeros((len(rows), width), dtype=torch.long)
    for j, r in enumerate(rows):
        n = lengths[j]
        ids[j, width - n :] = torch.tensor(r.prompt)
        positions[j, width - n :] = torch.arange(n)
        r.length = n
    offsets = torch.tensor([width - n for n in lengths])
    real = torch.arange(width).unsqueeze(0) >= offsets.unsqueeze(1)
    batch_rows, cols = real.nonzero(as_tuple=True)
    cohort = torch.tensor([r.cohort.id for r in rows])[batch_rows]
    target = torch.tensor([_inner(r) for r in rows])[batch_rows]
    where = positions[batch_rows, cols]
    out = []
    for i, dev in enumerate(devices):
        writes = []
        for c in sorted({r.cohort.id for r in rows}):
            pick = cohort == c
            writes.append(
                attention.Write(
                    c,
                    batch_rows[pick].to(dev),
                    cols[pick].to(dev),
                    target[pick].to(dev),
                    where[pick].to(dev),
                )
            )
        state = attention.PrefillBatch(caches[i], offsets.to(dev), writes)
        out.append(forward(i, ids.to(dev), positions.to(dev), state))
    return out
