"""What the engine knows about one row: the request, its completion, its host and device state.

A ``Request`` goes in, a ``Completion`` comes out. In between the engine keeps a ``Row`` on the
host (tokens so far, settings, where its K/V lives) and the row's per-step numbers in
``RowState``: device tensors indexed by the row's place in the batch (``Row.slot``), so a step
reads positions, last tokens, seeds and sampling settings without a Python loop over rows.
When rows join or leave, the batch is reordered (``RowState.permute``: one gather per tensor)
so that the rows of each K/V cohort sit next to each other. This module runs no model.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import torch

from codit.decoding.config import DecodingConfig, RowSettings


@dataclass(frozen=True)
class Request:
    """One prompt to complete.

    Attributes:
        key: the record's id; also seeds its sampling stream.
        prompt_ids: the prompt's token ids (chat template already applied).
        max_new_tokens: per-row cap; None uses the engine's setting.
        settings: per-row decoding overrides; None uses the engine's settings.
    """

    key: str
    prompt_ids: list[int]
    max_new_tokens: int | None = None
    settings: RowSettings | None = None


@dataclass(frozen=True)
class Completion:
    """A finished row: the response, or why there is none (``error``)."""

    key: str
    text: str
    token_ids: list[int]
    finish_reason: str  # "stop" | "length" | "error" | "cancelled"
    prompt_tokens: int
    completion_tokens: int
    error: str | None = None


@dataclass
class StepOutput:
    """What one ``step`` produced: finished (or rejected) rows and each row's new tokens."""

    completions: list[Completion] = field(default_factory=list)
    tokens: dict[str, list[int]] = field(default_factory=dict)


@dataclass(eq=False)
class Row:
    """A running row. ``slot`` is its place in the batch; ``cohort`` holds its K/V."""

    key: str
    prompt: list[int]
    max_new_tokens: int
    config: DecodingConfig
    watch: Any
    slot: int = -1
    cohort: Any = None
    length: int = 0  # K/V positions held
    done: bool = False  # finished, kept in the batch until a static batch ends
    tokens: list[int] = field(default_factory=list)

    @property
    def kind(self) -> tuple[float, float, bool, bool]:
        """What the batch-wide fast paths depend on: (alpha, beta, filtering, sampling)."""
        c = self.config
        sampling = c.temperature > 0
        return (c.alpha, c.beta, sampling and (c.top_k > 0 or c.top_p < 1.0), sampling)


def row_seed(seed: int, key: str) -> int:
    """A 63-bit seed derived from the run seed and the record id."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{key}".encode()).digest()[:8], "little") >> 1


def upload(
    values: list[Any], device: torch.device, dtype: torch.dtype = torch.long
) -> torch.Tensor:
    """A host list on the device without a blocking copy (pinned memory on CUDA)."""
    if device.type != "cuda":
        return torch.tensor(values, dtype=dtype, device=device)
    return torch.tensor(values, dtype=dtype).pin_memory().to(device, non_blocking=True)


class RowState:
    """Per-row decoding state in device tensors, row ``i`` of each being batch row ``i``.

    Attributes:
        pos: (S,) K/V positions held (where the next token's K/V goes).
        alive: (S,) 1 for a row still decoding, 0 for a finished or empty one.
        last: (S,) the next input token.
        steps: (S,) tokens drawn so far (the sampling counter).
        seeds: (S,) the row's sampling seed.
        top_k: (S,) top-k (0 = off).
        floats: (4, S) float64 temperature, top-p, alpha, beta.
    """

    def __init__(self, slots: int, device: torch.device):
        self.device = device
        self.pos, self.alive, self.last, self.steps, self.seeds, self.top_k = (
            torch.zeros(slots, dtype=torch.long, device=device) for _ in range(6)
        )
        self.floats = torch.zeros(4, slots, dtype=torch.float64, device=device)

    def _rows(self) -> tuple[torch.Tensor, ...]:
        return (self.pos, self.alive, self.last, self.steps, self.seeds, self.top_k)

    def activate(self, rows: list[Row]) -> None:
        """Set the state of freshly prefilled rows at their slots (one copy per tensor)."""
        index = upload([r.slot for r in rows], self.device)
        ints = upload(
            [[r.length, 1, 0, row_seed(r.config.seed, r.key), r.config.top_k] for r in rows],
            self.device,
        )
        for column, t in enumerate((self.pos, self.alive, self.steps, self.seeds, self.top_k)):
            t.index_copy_(0, index, ints[:, column])
        floats = upload(
            [[c.temperature, c.top_p, c.alpha, c.beta] for c in (r.config for r in rows)],
            self.device,
            torch.float64,
        )
        self.floats.index_copy_(1, index, floats.T)

    def stop(self, slots: list[int]) -> None:
        """Rows that finished: they draw no more (their positions stay where they are)."""
        self.alive.index_fill_(0, upload(slots, self.device), 0)

    def permute(self, order: list[int], before: int) -> None:
        """Batch row ``i`` takes the state of row ``order[i]``; rows past it up to ``before``
        are emptied (no longer alive, position 0)."""
        n = len(order)
        if order != list(range(n)):
            index = upload(order, self.device)
            for t in self._rows():
                t[:n] = t[index]
            self.floats[:, :n] = self.floats[:, index]
        if before > n:
            self.alive[n:before] = 0
            self.pos[n:before] = 0
