"""The CoIN loss as pure functions: hand-computed values, gradients, the detached weight."""

from __future__ import annotations

import math

import pytest
import torch

from codit.training.coin import answer_loss, coin_loss, last_token_pool, symmetric_info_nce


def ce(logits: list[float], target: int) -> float:
    """Cross-entropy of one row, by hand."""
    return -logits[target] + math.log(sum(math.exp(x) for x in logits))


def test_info_nce_on_orthogonal_pairs_by_hand():
    h = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    # cos = identity; with tau = 1 each row is CE([1, 0], 0) = log(1 + e^-1), in both directions.
    assert symmetric_info_nce(h, h, temperature=1.0).item() == pytest.approx(
        math.log(1 + math.exp(-1))
    )
    # tau = 0.5 doubles the logits; the norms of the vectors do not matter (cosine).
    scaled = torch.tensor([[3.0, 0.0], [0.0, 0.2]])
    assert symmetric_info_nce(scaled, h, temperature=0.5).item() == pytest.approx(
        math.log(1 + math.exp(-2))
    )


def test_info_nce_is_the_mean_of_both_directions():
    h_orig = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    h_para = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    r = 1 / math.sqrt(2)
    sim = [[1.0, 0.0], [r, r]]  # cos(orig_i, para_j)
    rows = (ce(sim[0], 0) + ce(sim[1], 1)) / 2
    cols = (ce([sim[0][0], sim[1][0]], 0) + ce([sim[0][1], sim[1][1]], 1)) / 2
    got = symmetric_info_nce(h_orig, h_para, temperature=1.0).item()
    assert got == pytest.approx((rows + cols) / 2)
    assert rows != pytest.approx(cols)  # the example really is asymmetric


def test_coin_loss_values_by_hand():
    h = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    ctr = math.log(1 + math.exp(-1))
    gen = torch.tensor(2.0)
    # Uncapped, the weight is gen / ctr, so the contrastive term is as large as gen.
    assert coin_loss(h, h, gen, temperature=1.0).item() == pytest.approx(4.0)
    # Capped at 1: gen + ctr.
    assert coin_loss(h, h, gen, temperature=1.0, max_ratio=1.0).item() == pytest.approx(2.0 + ctr)


def test_single_pair_has_no_contrastive_term():
    h = torch.randn(1, 4)
    gen = torch.tensor(1.5)
    assert coin_loss(h, h + 1, gen).item() == pytest.approx(1.5)  # ctr = 0, weight capped, no NaN


def test_gradient_reaches_both_inputs_and_the_weight_is_detached():
    torch.manual_seed(0)
    h_orig = torch.randn(4, 8, requires_grad=True)
    h_para = torch.randn(4, 8, requires_grad=True)
    gen = torch.tensor(3.0, requires_grad=True)
    coin_loss(h_orig, h_para, gen).backward()
    assert h_orig.grad.abs().sum() > 0 and h_para.grad.abs().sum() > 0
    # d loss / d gen is 1: gen reaches the loss only directly, not through the weight.
    assert gen.grad.item() == pytest.approx(1.0)

    # The gradient on h is the (constant) weight times the gradient of the contrastive loss.
    a = h_orig.detach().clone().requires_grad_(True)
    b = h_para.detach().clone().requires_grad_(True)
    ctr = symmetric_info_nce(a, b)
    ctr.backward()
    weight = min(1000.0, 3.0 / ctr.item())
    assert torch.allclose(h_orig.grad, weight * a.grad, atol=1e-5)
    assert torch.allclose(h_para.grad, weight * b.grad, atol=1e-5)


def test_last_token_pool_finds_the_last_real_token_on_either_side():
    hidden = torch.arange(2 * 4 * 3, dtype=torch.float).reshape(2, 4, 3)
    left = torch.tensor([[0, 0, 1, 1], [1, 1, 1, 1]])
    right = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]])
    assert torch.equal(last_token_pool(hidden, left), torch.stack([hidden[0, 3], hidden[1, 3]]))
    assert torch.equal(last_token_pool(hidden, right), torch.stack([hidden[0, 1], hidden[1, 3]]))


def test_answer_loss_matches_the_model_loss():
    from tiny_models import make_model, make_tokenizer

    model = make_model(make_tokenizer(), seed=0)
    ids = torch.randint(5, 100, (2, 9))
    labels = ids.clone()
    labels[:, :4] = -100
    out = model(input_ids=ids, labels=labels)
    assert answer_loss(out.logits, labels).item() == pytest.approx(out.loss.item(), rel=1e-5)


def test_pair_negatives_by_hand():
    from codit.training.coin import pair_blocks, pair_info_nce

    # Two blocks of the same two orthogonal pairs, tau = 1. In-batch, row 0 sees similarities
    # (1, 0, 1, 0): -log(e / (2e + 2)) = log(2 + 2/e) for every row and column. Per pair, each
    # block is the 2 x 2 identity: log(1 + 1/e), as for a batch of two.
    h = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    in_batch = symmetric_info_nce(h, h, temperature=1.0).item()
    assert in_batch == pytest.approx(math.log(2 + 2 / math.e))
    per_pair = pair_info_nce(h, h, temperature=1.0)
    assert per_pair.tolist() == pytest.approx([math.log(1 + 1 / math.e)] * 2)
    # a block equals the in-batch loss of that block alone; an odd last row has no negative
    mixed = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
    twin = torch.tensor([[0.8, 0.6], [0.0, 1.0], [1.0, 1.0]])
    blocks = pair_info_nce(mixed, twin, temperature=0.5)
    alone = symmetric_info_nce(mixed[:2], twin[:2], temperature=0.5)
    assert blocks.tolist() == pytest.approx([alone.item(), 0.0])
    assert pair_blocks(torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])).tolist() == [3.0, 7.0, 5.0]


def test_coin_loss_with_pair_negatives_averages_per_block_losses():
    h = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    ctr = math.log(1 + 1 / math.e)
    gen = torch.tensor([2.0, 1.0])  # one generation loss per block
    # uncapped each block's term is as large as its gen: (4 + 2) / 2
    assert coin_loss(h, h, gen, temperature=1.0, negatives="pair").item() == pytest.approx(3.0)
    # capped at 1: mean of (2 + ctr, 1 + ctr)
    capped = coin_loss(h, h, gen, temperature=1.0, max_ratio=1.0, negatives="pair").item()
    assert capped == pytest.approx(1.5 + ctr)
    # in-batch with the same vectors: one weight, one InfoNCE over all four rows
    wide = math.log(2 + 2 / math.e)
    assert coin_loss(h, h, torch.tensor(2.0), 1.0, 1.0, "in-batch").item() == pytest.approx(
        2.0 + wide
    )
    with pytest.raises(ValueError):
        coin_loss(h, h, gen, negatives="random")
