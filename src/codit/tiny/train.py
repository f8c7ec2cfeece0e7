"""The training loop of the tiny pair: pre-training on pages, then answer-only fine-tuning.

Plain torch on purpose: a few hundred steps of AdamW with warmup and cosine decay on a model of
two million parameters need no trainer framework, and a reader sees the whole recipe here.
Pre-training and fine-tuning are the same loop over (input ids, labels) sequences:

* pre-training: one corpus page per sequence, ending with ``<|end|>``, labels on every token.
  Pages are not packed together, so the base model never learns that text after ``<|end|>``
  ignores what came before; given a chat prompt it stays on the prompt's subject, like a real
  base model, which is what makes its probabilities a meaningful contrast for CoDIT.
* fine-tuning: one conversation per sequence, labels -100 on the prompt, so only the
  assistant's answer and its ``<|end|>`` are learnt.

Sequences of similar length are batched together (little padding, on the right). The loop is
deterministic for a seed on one machine with one thread count
(``torch.use_deterministic_algorithms``); across CPUs or thread counts the floating-point sums
may round differently, so weights can differ in the last bits while the recipe and the data stay
identical.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

Example = tuple[list[int], list[int]]  # (input ids, labels with -100 where no loss is taken)


@dataclass(frozen=True)
class OptimConfig:
    """One training phase: how many steps, how big the batches, how fast."""

    steps: int = field(metadata={"help": "optimizer steps"})
    batch_size: int = field(metadata={"help": "sequences per step"})
    lr: float = field(metadata={"help": "peak learning rate"})
    warmup: int = field(default=30, metadata={"help": "linear warmup steps"})
    min_lr_ratio: float = field(default=0.1, metadata={"help": "final learning rate / peak"})
    weight_decay: float = field(default=0.1, metadata={"help": "AdamW weight decay"})
    clip: float = field(default=1.0, metadata={"help": "gradient norm clip"})


def seed_everything(seed: int) -> None:
    """Seed torch and make its kernels deterministic."""
    import torch

    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)


def learning_rate(step: int, config: OptimConfig) -> float:
    """Linear warmup to ``lr``, then cosine decay to ``lr * min_lr_ratio`` at the last step."""
    if step < config.warmup:
        return config.lr * (step + 1) / config.warmup
    progress = (step - config.warmup) / max(1, config.steps - config.warmup)
    cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return config.lr * (config.min_lr_ratio + (1 - config.min_lr_ratio) * cosine)


def batches(
    examples: list[Example], batch_size: int, pad_id: int, seed: int
) -> Iterator[tuple[Any, Any]]:
    """Endless (input ids, labels) batches, (B, T) each, of examples of similar length.

    Each epoch sorts the examples by length (ties broken at random), cuts them into batches and
    shuffles the batches. Padding is on the right with labels -100; no attention mask is needed
    because causal attention already keeps every real token from seeing the padding after it,
    and without a mask attention takes its fast causal path.
    """
    import torch

    rng = random.Random(seed)
    while True:
        keyed = sorted(examples, key=lambda e: (len(e[0]), rng.random()))
        cuts = [keyed[i : i + batch_size] for i in range(0, len(keyed), batch_size)]
        rng.shuffle(cuts)
        for rows in cuts:
            width = max(len(ids) for ids, _ in rows)
            ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
            labels = torch.full((len(rows), width), -100, dtype=torch.long)
            for r, (x, y) in enumerate(rows):
                ids[r, : len(x)] = torch.tensor(x)
                labels[r, : len(y)] = torch.tensor(y)
            yield ids, labels


def train(
    model: Any,
    examples: list[Example],
    pad_id: int,
    config: OptimConfig,
    seed: int,
    desc: str = "train",
    progress: bool = False,
) -> list[float]:
    """Train ``model`` in place on ``examples`` for ``config.steps`` AdamW steps.

    Args:
        model: a causal LM (``transformers`` model that returns ``.loss`` given ``labels``).
        examples: (input ids, labels) pairs; labels -100 take no loss.
        pad_id: the padding token id.
        config: steps, batch size, learning-rate schedule.
        seed: the batching order.
        desc: the name of the phase, for the progress bar and the log.
        progress: show a progress bar.

    Returns:
        The loss of every step.
    """
    import torch
    from tqdm import tqdm

    model.train()
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": config.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=config.lr,
        betas=(0.9, 0.95),
        eps=1e-8,
    )
    n_tokens = sum(sum(1 for y in labels if y != -100) for _, labels in examples)
    log.info(
        "%s: %d sequences, %d trained tokens, %d steps", desc, len(examples), n_tokens, config.steps
    )
    stream = batches(examples, config.batch_size, pad_id, seed)
    losses: list[float] = []
    bar = tqdm(total=config.steps, desc=desc, disable=not progress, dynamic_ncols=True, leave=False)
    for step in range(config.steps):
        input_ids, labels = next(stream)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, config)
        loss = model(input_ids=input_ids, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if step % 10 == 0:
            bar.set_postfix_str(f"loss {sum(losses[-10:]) / len(losses[-10:]):.3f}")
        bar.update(1)
    bar.close()
    model.eval()
    log.info("%s: final loss %.3f", desc, sum(losses[-20:]) / len(losses[-20:]))
    return losses
