"""CoIN batches: each original beside its paraphrase, hard negatives next to each other.

Three steps, each a plain function or a small object:

- ``encode_pair`` tokenizes an original conversation and its paraphrased twin with the chat
  template; labels are -100 on the prompt, so only the answer is trained.
- ``pair_order`` lays the pairs out the way CoIN's authors do: records sharing a group (the same
  instruction with a different input and output) sit next to each other in a batch, so a
  row's neighbour is a hard negative. Batches are then shuffled as wholes, never across that
  layout; the trainer reads the dataset in this order.
- ``CoinCollator`` stacks B originals over their B paraphrases into one (2B, L) batch, padded
  on the left so the last position of every row is its last real token.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

IGNORE = -100


def encode_conversation(
    tokenizer: Any, messages: list[dict[str, str]], max_length: int
) -> dict[str, list[int]]:
    """Token ids of a conversation and labels on its last (assistant) turn only.

    The prompt is the conversation before the last turn rendered with the generation prompt;
    the answer starts where the full rendering first differs from it, which holds even for
    templates that write the prompt slightly differently on its own. Sequences longer than
    ``max_length`` keep their start.
    """
    prompt = tokenizer.apply_chat_template(
        messages[:-1], tokenize=False, add_generation_prompt=True
    )
    full = tokenizer.apply_chat_template(messages, tokenize=False)
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    ids = tokenizer(full, add_special_tokens=False)["input_ids"]
    shared = 0
    while shared < min(len(prompt_ids), len(ids)) and prompt_ids[shared] == ids[shared]:
        shared += 1
    labels = [IGNORE] * shared + ids[shared:]
    return {"input_ids": ids[:max_length], "labels": labels[:max_length]}


def encode_pair(tokenizer: Any, record: dict[str, Any], max_length: int) -> dict[str, list[int]]:
    """One dataset row: the original (``orig_*``) and the paraphrase (``para_*``)."""
    orig = encode_conversation(tokenizer, record["messages"], max_length)
    para = encode_conversation(tokenizer, record["paraphrased"], max_length)
    return {
        "orig_input_ids": orig["input_ids"],
        "orig_labels": orig["labels"],
        "para_input_ids": para["input_ids"],
        "para_labels": para["labels"],
    }


def pair_order(groups: list[str | None], batch_size: int, seed: int) -> list[int]:
    """An order of the records in which same-group records are batch neighbours.

    Records of one group are cut into blocks of two (the hard-negative neighbours); leftovers
    and ungrouped records are blocks of one. Each batch takes as many two-blocks as fit, then
    fills up with one-blocks, so a two-block never straddles two batches (except when only
    two-blocks remain and the batch size is odd). The batches are shuffled as wholes.

    Args:
        groups: each record's group, or None.
        batch_size: records per batch (per device).
        seed: seeds the shuffles.

    Returns:
        A permutation of ``range(len(groups))``; consecutive runs of ``batch_size`` are batches.
    """
    rng = random.Random(seed)
    by_group: dict[str, list[int]] = defaultdict(list)
    singles: list[list[int]] = []
    for i, group in enumerate(groups):
        if group is None:
            singles.append([i])
        else:
            by_group[group].append(i)
    pairs: list[list[int]] = []
    for members in by_group.values():
        rng.shuffle(members)
        pairs += [members[j : j + 2] for j in range(0, len(members) - 1, 2)]
        if len(members) % 2:
            singles.append(members[-1:])
    rng.shuffle(pairs)
    rng.shuffle(singles)
    batches: list[list[int]] = []
    while pairs or singles:
        batch: list[int] = []
        while pairs and len(batch) + 2 <= batch_size:
            batch += pairs.pop()
        while singles and len(batch) < batch_size:
            batch += singles.pop()
        if len(batch) < batch_size and pairs:  # odd batch size and no singles left: split a pair
            first, second = pairs.pop()
            batch.append(first)
            singles.append([second])
        batches.append(batch)
    rng.shuffle(batches)
    return [i for batch in batches for i in batch]


@dataclass
class CoinCollator:
    """Pads a list of encoded pairs into one batch: originals in rows 0..B-1, paraphrases in
    rows B..2B-1, row i and row B + i being the same instance.

    Returns tensors ``input_ids``, ``attention_mask``, ``position_ids`` and ``labels``, each
    (2B, L), left-padded; positions count real tokens only, so padding changes nothing.
    """

    pad_token_id: int

    def __call__(self, rows: list[dict[str, list[int]]]) -> dict[str, Any]:
        import torch

        seqs = [r["orig_input_ids"] for r in rows] + [r["para_input_ids"] for r in rows]
        labels = [r["orig_labels"] for r in rows] + [r["para_labels"] for r in rows]
        width = max(len(s) for s in seqs)
        input_ids = torch.full((len(seqs), width), self.pad_token_id, dtype=torch.long)
        label_ids = torch.full((len(seqs), width), IGNORE, dtype=torch.long)
        attention = torch.zeros((len(seqs), width), dtype=torch.long)
        for row, (seq, lab) in enumerate(zip(seqs, labels, strict=True)):
            input_ids[row, width - len(seq) :] = torch.tensor(seq)
            label_ids[row, width - len(lab) :] = torch.tensor(lab)
            attention[row, width - len(seq) :] = 1
        positions = (attention.cumsum(dim=1) - 1).clamp(min=0)
        return {
            "input_ids": input_ids,
            "attention_mask": attention,
            "position_ids": positions,
            "labels": label_ids,
        }
