"""The score rules on hand-computed tensors, and their invariants."""

from __future__ import annotations

import math

import pytest
import torch

from codit.decoding.contrastive import (
    SCORE_RULES,
    codit_scores,
    obrien_scores,
    plausibility_mask,
    row_scores,
)

P_POST = torch.tensor([[0.6, 0.3, 0.095, 0.005]])
P_BASE = torch.tensor([[0.5, 0.1, 0.2, 0.2]])


def test_codit_rule_by_hand():
    scores = codit_scores(P_POST.log(), P_BASE.log(), alpha=0.1, beta=1.0)
    # keep p_post >= 0.06: tokens 0, 1, 2; score = log(p_post / p_base)
    expected = torch.tensor(
        [[math.log(0.6 / 0.5), math.log(0.3 / 0.1), math.log(0.095 / 0.2), -math.inf]]
    )
    assert torch.allclose(scores, expected, atol=1e-6)
    assert scores.argmax().item() == 1  # contrast picks the token the base finds unlikely


def test_codit_beta_scales_the_base_term():
    scores = codit_scores(P_POST.log(), P_BASE.log(), alpha=0.0, beta=0.5)
    expected = P_POST.log() - 0.5 * P_BASE.log()
    assert torch.allclose(scores, expected, atol=1e-6)


def same_up_to_row_constants(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal -inf sets, and finite entries that differ by one constant per row."""
    if not torch.equal(torch.isinf(a), torch.isinf(b)):
        return False
    return torch.allclose(torch.softmax(a, -1), torch.softmax(b, -1), atol=1e-6)


def test_scores_are_shift_invariant_in_logits():
    logits = torch.randn(3, 11)
    base = torch.randn(3, 11)
    a = codit_scores(logits, base, 0.05, 1.0)
    b = codit_scores(logits + 7.0, base - 3.0, 0.05, 1.0)
    assert same_up_to_row_constants(a, b)


@pytest.mark.parametrize(("alpha", "beta"), [(0.01, 1.0), (0.1, 0.5), (0.0, 2.0), (0.3, 0.0)])
def test_codit_scores_are_the_log_softmax_formula_up_to_a_row_constant(alpha, beta):
    """The scores are computed on logits; the formula on log-probabilities, by hand."""
    torch.manual_seed(1)
    post, base = torch.randn(6, 40) * 3, torch.randn(6, 40) * 3
    lp_post, lp_base = torch.log_softmax(post, -1), torch.log_softmax(base, -1)
    keep = lp_post >= lp_post.max(-1, keepdim=True).values + math.log(alpha or 1e-300)
    expected = (lp_post - beta * lp_base).masked_fill(~keep, -math.inf)
    assert same_up_to_row_constants(codit_scores(post, base, alpha, beta), expected)
    rows = row_scores("codit", post, base, torch.full((6,), alpha), torch.full((6,), beta))
    assert same_up_to_row_constants(rows, expected)


def test_obrien_rule_by_hand():
    post = torch.tensor([[2.0, 1.0, 0.0, -10.0]])
    base = torch.tensor([[1.0, -1.0, 0.0, 0.0]])
    scores = obrien_scores(post, base, alpha=0.1, beta=0.5)
    # p_post of token 2 is e^0/(e^2+e^1+e^0+e^-10) ~ 0.09 >= 0.1 * 0.665 -> kept; token 3 dropped
    expected = torch.tensor([[1.5 * 2 - 0.5 * 1, 1.5 * 1 + 0.5, 0.0, -math.inf]])
    assert torch.allclose(scores, expected)


def test_mask_threshold_is_relative_to_the_max():
    logp = torch.tensor([[0.5, 0.05, 0.049, 0.401]]).log()
    mask = plausibility_mask(logp, alpha=0.1)
    assert mask.tolist() == [[True, True, False, True]]


@pytest.mark.parametrize("alpha", [0.0, 0.01, 0.5, 1.0])
def test_mask_always_keeps_the_argmax(alpha):
    torch.manual_seed(0)
    logits = torch.randn(64, 50) * 5
    mask = plausibility_mask(torch.log_softmax(logits, -1), alpha)
    assert mask.gather(1, logits.argmax(-1, keepdim=True)).all()
    for rule in (codit_scores, obrien_scores):
        scores = rule(logits, torch.randn(64, 50), alpha, 1.0)
        assert torch.isfinite(scores.gather(1, logits.argmax(-1, keepdim=True))).all()


def test_alpha_zero_beta_zero_is_the_instruct_distribution_exactly():
    logits = torch.randn(4, 30)
    base = torch.randn(4, 30)
    base[0, 3] = -math.inf  # a base log-prob of -inf must not leak in through 0 * inf
    direct = codit_scores(logits, None, 0.0, 1.0)
    assert torch.equal(codit_scores(logits, base, 0.0, 0.0), direct)
    assert torch.allclose(torch.softmax(direct, -1), torch.softmax(logits, -1))
    # with a plausibility cut but no contrast, the scores are the instruct log-probs, masked
    # (up to a per-row constant)
    cut = codit_scores(logits, base, 0.2, 0.0)
    kept = plausibility_mask(torch.log_softmax(logits, -1), 0.2)
    assert same_up_to_row_constants(
        cut, torch.log_softmax(logits, -1).masked_fill(~kept, -math.inf)
    )


def test_bf16_logits_are_scored_in_float32():
    scores = codit_scores(torch.randn(2, 8).bfloat16(), torch.randn(2, 8).bfloat16())
    assert scores.dtype == torch.float32


def test_the_rule_names_of_the_flags_and_the_server_are_those_of_score_rules():
    # SCORE_RULES (torch) is the list; the torch-free copies must not drift from it.
    import typing

    from codit.decoding.config import MODES, RULES
    from codit.serve.protocol import ChatRequest

    def literal(name: str) -> tuple[str, ...]:
        annotation = ChatRequest.model_fields[name].annotation
        (values,) = [a for a in typing.get_args(annotation) if a is not type(None)]
        return typing.get_args(values)

    assert RULES == tuple(SCORE_RULES) == ("codit", "obrien")
    assert literal("rule") == RULES
    assert literal("mode") == MODES == ("codit", "direct")
