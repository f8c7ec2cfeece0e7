"""CoIN batches: answer-only labels, pairs kept together, hard negatives as neighbours."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from codit.training.collator import (
    IGNORE,
    CoinCollator,
    encode_conversation,
    encode_pair,
    pair_order,
)
from tiny_models import make_tokenizer


@pytest.fixture(scope="module")
def tok():
    return make_tokenizer()


def test_labels_cover_the_answer_and_its_end_of_turn_only(tok):
    messages = [
        {"role": "user", "content": "write three bullet points"},
        {"role": "assistant", "content": "the lazy dog"},
    ]
    enc = encode_conversation(tok, messages, max_length=256)
    trained = [t for t, lab in zip(enc["input_ids"], enc["labels"], strict=True) if lab != IGNORE]
    assert tok.decode(trained) == "the lazy dog<|end|>\n"
    first = next(i for i, lab in enumerate(enc["labels"]) if lab != IGNORE)
    assert tok.decode(enc["input_ids"][:first]).endswith("<|assistant|>\n")
    assert all(lab == IGNORE for lab in enc["labels"][:first])


def test_truncation_keeps_the_start(tok):
    messages = [
        {"role": "user", "content": "the quick brown fox " * 10},
        {"role": "assistant", "content": "dog"},
    ]
    enc = encode_conversation(tok, messages, max_length=8)
    assert len(enc["input_ids"]) == len(enc["labels"]) == 8
    assert all(
        lab == IGNORE for lab in enc["labels"]
    )  # the answer fell off: the trainer drops such pairs


def test_collator_stacks_originals_over_their_paraphrases(tok):
    records = [
        {
            "messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}],
            "paraphrased": [{"role": "user", "content": p}, {"role": "assistant", "content": a}],
        }
        for q, p, a in [
            ("write apples", "please write about apples now", "ok"),
            ("the fox", "a fox", "the lazy dog"),
        ]
    ]
    rows = [encode_pair(tok, r, 256) for r in records]
    batch = CoinCollator(tok.pad_token_id)(rows)
    assert batch["input_ids"].shape[0] == 4
    assert {k: v.shape for k, v in batch.items()} == {k: batch["input_ids"].shape for k in batch}
    for i, row in enumerate(rows):
        for offset, side in ((0, "orig"), (2, "para")):
            r = i + offset  # row i and row B + i are the same instance
            mask = batch["attention_mask"][r].bool()
            assert batch["input_ids"][r][mask].tolist() == row[f"{side}_input_ids"]
            assert batch["labels"][r][mask].tolist() == row[f"{side}_labels"]
            assert not mask[: (~mask).sum()].any()  # padding on the left
            assert batch["position_ids"][r][mask].tolist() == list(range(int(mask.sum())))
            assert (batch["labels"][r][~mask] == IGNORE).all()


def test_pair_order_puts_same_group_records_side_by_side():
    groups = ["a", "b", "a", None, "b", "c", "c", "c", None, "d", "d", "e"]
    order = pair_order(groups, batch_size=4, seed=3)
    assert sorted(order) == list(range(len(groups)))
    batches = [order[i : i + 4] for i in range(0, len(order), 4)]
    neighbours = Counter()
    for batch in batches:
        for j in range(0, len(batch) - 1, 2):
            ga, gb = groups[batch[j]], groups[batch[j + 1]]
            if ga is not None and ga == gb:
                neighbours[ga] += 1
    # every group of two or more gives one neighbour pair per two members, within one batch
    assert neighbours == {"a": 1, "b": 1, "c": 1, "d": 1}
    assert pair_order(groups, 4, seed=3) == order
    assert pair_order(groups, 4, seed=4) != order


@pytest.mark.parametrize("batch_size", [2, 8])
def test_pair_order_blocks_of_two_are_hard_pairs_for_pair_negatives(batch_size):
    # --negatives pair scores rows (2k, 2k+1) of each batch on their own: with grouped data
    # laid out by pair_order every such block is one group's two records (a hard pair), the
    # ungrouped records fill the blocks after them
    groups = ["a", "b", "c", "a", "b", "c", "d", "d", None, None, "e", "e", "f", "f", None, None]
    order = pair_order(groups, batch_size=batch_size, seed=5)
    assert sorted(order) == list(range(len(groups)))
    blocks = [(groups[order[i]], groups[order[i + 1]]) for i in range(0, len(order), 2)]
    hard = [a for a, b in blocks if a is not None and a == b]
    assert sorted(hard) == ["a", "b", "c", "d", "e", "f"]
    assert sum(a is None and b is None for a, b in blocks) == 2


def test_pair_order_odd_batch_size_still_covers_everything():
    groups = ["a", "a", "b", "b", "c", "c"]
    order = pair_order(groups, batch_size=3, seed=0)
    assert sorted(order) == list(range(6))
    assert all(len(order[i : i + 3]) == 3 for i in range(0, 6, 3))


def test_collated_batch_runs_through_a_model(tok):
    from tiny_models import make_model

    model = make_model(tok, 0)
    rec = {
        "messages": [{"role": "user", "content": "write"}, {"role": "assistant", "content": "dog"}],
        "paraphrased": [
            {"role": "user", "content": "please write now"},
            {"role": "assistant", "content": "dog"},
        ],
    }
    batch = CoinCollator(tok.pad_token_id)([encode_pair(tok, rec, 64)])
    padded = model(
        input_ids=batch["input_ids"],
        attention_mask=batch["attention_mask"],
        position_ids=batch["position_ids"],
    ).logits
    alone = model(input_ids=torch.tensor([encode_pair(tok, rec, 64)["orig_input_ids"]])).logits
    n = alone.shape[1]
    # left padding with position ids from the mask changes nothing for the real tokens
    assert torch.allclose(padded[0, -n:], alone[0], atol=1e-4)
