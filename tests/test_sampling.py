"""Warpers and token choice on hand-computed tensors."""

from __future__ import annotations

import math

import torch

from codit.decoding.sampling import apply_top_k, apply_top_p, next_tokens, warp

NEG = -math.inf


def test_top_k_keeps_the_k_best():
    scores = torch.tensor([[1.0, 4.0, 3.0, 2.0]])
    assert apply_top_k(scores, 2).tolist() == [[NEG, 4.0, 3.0, NEG]]
    assert torch.equal(apply_top_k(scores, 0), scores)


def test_top_p_keeps_the_smallest_set_reaching_p():
    probs = torch.tensor([[0.5, 0.3, 0.15, 0.05]])
    kept = apply_top_p(probs.log(), 0.75)
    # 0.5 < 0.75, 0.5 + 0.3 >= 0.75: the crossing token is kept
    assert torch.isfinite(kept).tolist() == [[True, True, False, False]]
    assert torch.isfinite(apply_top_p(probs.log(), 0.1)).tolist() == [[True, False, False, False]]
    assert torch.equal(apply_top_p(probs.log(), 1.0), probs.log())


def test_temperature_divides_scores():
    scores = torch.tensor([[2.0, -4.0]])
    assert warp(scores, 0.5).tolist() == [[4.0, -8.0]]


def test_greedy_is_argmax_and_ignores_generators():
    scores = torch.tensor([[0.1, 3.0, NEG], [NEG, -1.0, -0.5]])
    assert next_tokens(scores, 0.0).tolist() == [1, 2]


def test_sampling_never_picks_excluded_tokens_and_follows_the_distribution():
    scores = torch.tensor([[math.log(0.7), math.log(0.3), NEG]])
    gen = torch.Generator().manual_seed(0)
    draws = [next_tokens(scores, 1.0, generators=[gen]).item() for _ in range(2000)]
    assert 2 not in draws
    assert abs(draws.count(0) / 2000 - 0.7) < 0.04


def test_per_row_generators_make_rows_independent_of_batch_neighbours():
    torch.manual_seed(1)
    scores = torch.randn(3, 40)

    def draw(rows):
        gens = [torch.Generator().manual_seed(100 + r) for r in rows]
        return next_tokens(scores[rows], 1.0, generators=gens).tolist()

    alone = [draw([r])[0] for r in range(3)]
    assert draw([0, 1, 2]) == alone
    assert draw([2, 0]) == [alone[2], alone[0]]
