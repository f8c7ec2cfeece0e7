"""Warpers and token choice on hand-computed tensors; the vectorised draw against references."""

from __future__ import annotations

import math

import pytest
import torch

from codit.decoding import sampling
from codit.decoding.sampling import (
    apply_top_k,
    apply_top_p,
    filter_top_k_top_p,
    mix32,
    next_tokens,
    row_keys,
    sample,
    uniforms,
    warp,
)

NEG = -math.inf


# ---- the scalar path ------------------------------------------------------------------------


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


def test_next_tokens_greedy_is_argmax():
    scores = torch.tensor([[0.1, 3.0, NEG], [NEG, -1.0, -0.5]])
    assert next_tokens(scores, 0.0).tolist() == [1, 2]


def test_next_tokens_per_row_generators_make_rows_independent_of_neighbours():
    torch.manual_seed(1)
    scores = torch.randn(3, 40)

    def draw(rows):
        gens = [torch.Generator().manual_seed(100 + r) for r in rows]
        return next_tokens(scores[rows], 1.0, generators=gens).tolist()

    alone = [draw([r])[0] for r in range(3)]
    assert draw([0, 1, 2]) == alone
    assert draw([2, 0]) == [alone[2], alone[0]]


# ---- the noise: exact integer arithmetic ------------------------------------------------------


def _py_mix32(x: int) -> int:
    """lowbias32 in plain Python integers: the independent reference."""
    x ^= x >> 16
    x = (x * 0x7FEB352D) & 0xFFFFFFFF
    x ^= x >> 15
    x = (x * 0x846CA68B) & 0xFFFFFFFF
    return x ^ (x >> 16)


def test_mix32_equals_the_unsigned_reference_on_extreme_values():
    values = [0, 1, 2, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF, 0x12345678, 0xDEADBEEF]
    got = mix32(torch.tensor(values, dtype=torch.int64)).tolist()
    assert got == [_py_mix32(v) for v in values]
    assert all(0 <= g <= 0xFFFFFFFF for g in got)


def test_uniforms_equal_a_pure_python_reference_for_63_bit_seeds():
    seeds = [0, 1, 2**63 - 1, 0x0123456789ABCDEF]
    steps = [0, 7, 2**40 + 3, 123456]
    vocab = 1037  # long enough for vectorised kernels and their scalar tails
    got = uniforms(torch.tensor(seeds), torch.tensor(steps), vocab)
    for b, (seed, step) in enumerate(zip(seeds, steps, strict=True)):
        k = _py_mix32(((seed >> 32) & 0xFFFFFFFF) ^ 0x9E3779B9)
        k = _py_mix32(k ^ (seed & 0xFFFFFFFF))
        k = _py_mix32(k ^ ((step >> 32) & 0xFFFFFFFF))
        k = _py_mix32(k ^ (step & 0xFFFFFFFF))
        want = []
        for j in range(vocab):
            x = _py_mix32(j + 0x632BE5AB) ^ k
            x ^= x >> 16
            x = (x * 0x7FEB352D) & 0xFFFFFFFF
            x ^= x >> 15
            x = (x * 0x846CA68B) & 0xFFFFFFFF
            want.append(((x >> 9) + 0.5) / 2**23)
        assert got[b].tolist() == want
    assert row_keys(torch.tensor(seeds), torch.tensor(steps)).unique().numel() == 4


def test_uniforms_are_uniform_and_uncorrelated_across_neighbouring_counters():
    u = uniforms(torch.arange(64), torch.zeros(64, dtype=torch.long), 4096)
    n = u.numel()
    assert (u > 0).all() and (u < 1).all()  # so log(-log u) is finite
    # mean of n uniforms has sd 1/sqrt(12 n); 5 sd is a bound a correct hash meets every time
    assert abs(u.mean().item() - 0.5) < 5 / math.sqrt(12 * n)
    counts = torch.histc(u, bins=16, min=0.0, max=1.0)
    chi2 = ((counts - n / 16) ** 2 / (n / 16)).sum().item()
    assert chi2 < 37.7  # chi-square, 15 degrees of freedom, p = 0.001
    # adjacent tokens, adjacent seeds and adjacent steps are uncorrelated
    nxt = uniforms(torch.arange(64), torch.ones(64, dtype=torch.long), 4096)
    for a, b in ((u[:, :-1], u[:, 1:]), (u[:-1], u[1:]), (u, nxt)):
        corr = torch.corrcoef(torch.stack([a.flatten(), b.flatten()]))[0, 1].item()
        assert abs(corr) < 5 / math.sqrt(a.numel())


# ---- top-k / top-p on per-row tensors ---------------------------------------------------------


def _settings(b, top_k=0, top_p=1.0):
    return torch.full((b,), top_k, dtype=torch.long), torch.full((b,), top_p)


def test_filter_top_k_per_row_by_hand():
    logits = torch.tensor([[1.0, 4.0, 3.0, 2.0], [1.0, 4.0, 3.0, 2.0], [0.0, 0.0, 5.0, NEG]])
    out = filter_top_k_top_p(logits, torch.tensor([2, 0, 1]), torch.ones(3))
    assert out.tolist() == [[NEG, 4.0, 3.0, NEG], [1.0, 4.0, 3.0, 2.0], [NEG, NEG, 5.0, NEG]]


def test_filter_top_p_per_row_by_hand():
    probs = torch.tensor([[0.5, 0.3, 0.15, 0.05]] * 3)
    kept = torch.isfinite(
        filter_top_k_top_p(
            probs.log(), torch.zeros(3, dtype=torch.long), torch.tensor([0.75, 0.1, 0.96])
        )
    )
    assert kept.tolist() == [
        [True, True, False, False],  # 0.5 < 0.75 <= 0.8: the crossing token is kept
        [True, False, False, False],
        [True, True, True, True],  # 0.95 < 0.96
    ]


def test_filter_top_p_is_measured_after_top_k_renormalises():
    # top-2 leaves (0.5, 0.3) -> (0.625, 0.375); top-p 0.6 then keeps only the first
    probs = torch.tensor([[0.5, 0.3, 0.15, 0.05]])
    out = filter_top_k_top_p(probs.log(), torch.tensor([2]), torch.tensor([0.6]))
    assert torch.isfinite(out).tolist() == [[True, False, False, False]]
    # without top-k, 0.5 < 0.6 and the second token is kept too
    out = filter_top_k_top_p(probs.log(), torch.tensor([0]), torch.tensor([0.6]))
    assert torch.isfinite(out).tolist() == [[True, True, False, False]]


def test_filter_candidate_path_equals_full_sort(monkeypatch):
    torch.manual_seed(0)
    logits = torch.randn(6, 300) * 3
    logits[0, :150] = NEG  # excluded tokens stay excluded
    top_k = torch.tensor([0, 5, 0, 40, 250, 0])
    top_p = torch.tensor([0.9, 1.0, 0.3, 0.8, 0.95, 0.999])
    monkeypatch.setattr(sampling, "CANDIDATES", 300)  # cap == V: the full sort
    full = filter_top_k_top_p(logits, top_k, top_p)
    monkeypatch.setattr(sampling, "CANDIDATES", 32)  # rows 3, 4, 5 need the fallback
    cand = filter_top_k_top_p(logits, top_k, top_p)
    assert torch.equal(torch.isfinite(full), torch.isfinite(cand))
    # each row's kept set against the scalar reference (which sorts the whole row)
    for b in range(6):
        ref = warp(logits[b : b + 1], 1.0, int(top_k[b]), float(top_p[b]))
        assert torch.equal(torch.isfinite(ref), torch.isfinite(full[b : b + 1])), b


# ---- the draw ---------------------------------------------------------------------------------


def _draw(scores, temperature=1.0, top_k=0, top_p=1.0, seeds=None, steps=None, filtering=False):
    b = scores.shape[0]
    k, p = _settings(b, top_k, top_p)
    t = temperature if isinstance(temperature, torch.Tensor) else torch.full((b,), temperature)
    seeds = torch.arange(b) if seeds is None else seeds
    steps = torch.zeros(b, dtype=torch.long) if steps is None else steps
    return sample(scores, t, k, p, seeds, steps, filtering=filtering)


def test_greedy_rows_take_the_argmax():
    scores = torch.tensor([[0.1, 3.0, NEG], [NEG, -1.0, -0.5], [2.0, 2.0, 1.0]])
    assert _draw(scores, 0.0).tolist() == [1, 2, 0]  # ties to the lowest id


def test_a_row_draws_the_same_alone_and_in_a_batch_of_32():
    torch.manual_seed(3)
    row = torch.randn(1, 500)
    seed, steps = torch.tensor([987654321]), torch.arange(40)
    alone = [
        _draw(row, 0.8, 50, 0.9, seed, steps[s : s + 1], filtering=True).item() for s in range(40)
    ]
    assert len(set(alone)) > 5  # it really samples
    for s in range(40):
        batch = torch.randn(32, 500) * 4  # random neighbours, different every step
        batch[17] = row[0]
        seeds = torch.randint(0, 2**62, (32,))
        seeds[17] = seed
        st = torch.randint(0, 1000, (32,))
        st[17] = s
        t = torch.rand(32) * 2
        t[17] = 0.8
        k = torch.randint(0, 100, (32,))
        k[17] = 50
        p = torch.rand(32)
        p[17] = 0.9
        got = sample(batch, t, k, p, seeds, st, filtering=True)
        assert got[17].item() == alone[s], s


def test_frequencies_over_seeds_follow_softmax_of_scores_over_t():
    scores = torch.tensor([[1.0, 0.0, -1.0, 2.0, NEG, 0.5]])
    n = 40000
    for temperature in (1.0, 0.5, 2.0):
        ids = _draw(scores.expand(n, -1), temperature, seeds=torch.arange(n) * 7919)
        counts = torch.bincount(ids, minlength=6).double()
        assert counts[4] == 0  # the -inf token is never drawn
        expected = torch.softmax(scores[0] / temperature, -1).double() * n
        live = expected > 0
        chi2 = ((counts[live] - expected[live]) ** 2 / expected[live]).sum().item()
        assert chi2 < 20.5, (temperature, counts.tolist())  # 4 dof, p = 0.0004


def test_one_seed_over_many_steps_follows_the_distribution():
    scores = torch.tensor([[math.log(0.7), math.log(0.2), math.log(0.1)]])
    n = 20000
    ids = _draw(scores.expand(n, -1), seeds=torch.full((n,), 5), steps=torch.arange(n))
    counts = torch.bincount(ids, minlength=3).double()
    expected = torch.tensor([0.7, 0.2, 0.1], dtype=torch.double) * n
    assert ((counts - expected) ** 2 / expected).sum().item() < 15.2  # 2 dof, p = 0.0005


def test_top_k_and_top_p_limit_the_support_of_draws():
    probs = torch.tensor([[0.4, 0.3, 0.2, 0.1]])
    n = 4000
    seeds = torch.arange(n)
    k_ids = _draw(probs.log().expand(n, -1), top_k=2, seeds=seeds, filtering=True)
    assert set(k_ids.tolist()) == {0, 1}
    p_ids = _draw(probs.log().expand(n, -1), top_p=0.8, seeds=seeds, filtering=True)
    assert set(p_ids.tolist()) == {0, 1, 2}  # 0.7 < 0.8: the third token crosses
    # with filtering off the same settings are ignored: every token occurs
    off = _draw(probs.log().expand(n, -1), top_k=2, top_p=0.5, seeds=seeds, filtering=False)
    assert set(off.tolist()) == {0, 1, 2, 3}


def test_implausible_tokens_are_never_drawn_even_when_flat_otherwise():
    scores = torch.zeros(2000, 50)
    scores[:, ::3] = NEG
    ids = _draw(scores, 5.0, seeds=torch.arange(2000))
    assert (ids % 3 != 0).all()
    assert ids.unique().numel() == 33  # every plausible token occurs


def test_rows_with_different_temperatures_in_one_batch():
    n = 6000
    scores = torch.tensor([2.0, 0.0, -2.0]).expand(3 * n, -1)
    t = torch.tensor([0.0, 0.5, 4.0]).repeat_interleave(n)
    ids = _draw(scores, t, seeds=torch.arange(3 * n))
    assert (ids[:n] == 0).all()  # greedy rows
    for i, temperature in ((1, 0.5), (2, 4.0)):
        counts = torch.bincount(ids[i * n : (i + 1) * n], minlength=3).double()
        expected = torch.softmax(torch.tensor([2.0, 0.0, -2.0]) / temperature, -1).double() * n
        assert ((counts - expected) ** 2 / expected).sum().item() < 15.2, temperature


def test_all_greedy_batch_needs_no_noise(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("noise drawn for a greedy batch")

    monkeypatch.setattr(sampling, "uniforms", boom)
    scores = torch.randn(4, 10)
    assert _draw(scores, 0.0).tolist() == scores.argmax(-1).tolist()
    with pytest.raises(AssertionError):
        _draw(scores, 1.0)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_noise_and_draws_are_the_same_on_cuda_and_cpu():
    seeds = torch.randint(0, 2**62, (16,))
    steps = torch.randint(0, 5000, (16,))
    cpu = sampling.noise_bits(seeds, steps, 151936)
    cuda = sampling.noise_bits(seeds.cuda(), steps.cuda(), 151936)
    assert torch.equal(cpu, cuda.cpu())
    scores = torch.randn(16, 151936, dtype=torch.float64)  # no reduction-order ties at this size
    args = (torch.full((16,), 0.7), torch.zeros(16, dtype=torch.long), torch.ones(16))
    a = sample(scores, *args, seeds, steps, filtering=False)
    b = sample(
        scores.cuda(), *(x.cuda() for x in args), seeds.cuda(), steps.cuda(), filtering=False
    )
    assert torch.equal(a, b.cpu())
