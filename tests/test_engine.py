"""The two-model engine against independent references.

The reference decodes one prompt at a time and, at every step, runs both models on the whole
sequence without any KV cache, then applies the CoDIT rule written out here by hand. The
models are float64 so that a comparison never hinges on rounding.
"""

from __future__ import annotations

import pytest
import torch

from codit.decoding.config import DecodingConfig
from codit.decoding.engine import PairEngine, Request

PROMPTS = [
    "hello fox",
    "write three bullet points about apples and pears, all lowercase",
    "a",
    "the base model knows facts; the instruct model follows instructions. numbers 0 1 2 3",
    "no commas",
]


def encode(tokenizer, text):
    chat = tokenizer.apply_chat_template(
        [{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True
    )
    return tokenizer(chat, add_special_tokens=False)["input_ids"]


def requests(tokenizer, prompts=PROMPTS, max_new=None):
    return [
        Request(f"r{i}", encode(tokenizer, p), (max_new[i] if max_new else None))
        for i, p in enumerate(prompts)
    ]


def run(engine_models, tokenizer, config, batch_size, continuous=True, reqs=None, stop_ids=None):
    instruct, base = engine_models
    engine = PairEngine(
        instruct,
        base if config.contrastive else None,
        tokenizer,
        config,
        stop_ids or [tokenizer.eos_token_id],
        len(tokenizer),
        batch_size,
        continuous,
    )
    return {c.key: c for c in engine.generate(reqs or requests(tokenizer))}


@torch.no_grad()
def reference_greedy(instruct, base, ids, steps, alpha, beta, eos):
    """Full-sequence recompute each step, rule applied by hand."""
    out = []
    seq = list(ids)
    for _ in range(steps):
        x = torch.tensor([seq])
        lp_post = torch.log_softmax(instruct(x).logits[0, -1], -1)
        if base is None:
            score = lp_post
        else:
            lp_base = torch.log_softmax(base(x).logits[0, -1], -1)
            p_post = lp_post.exp()
            keep = p_post >= alpha * p_post.max()
            score = torch.where(
                keep, lp_post - beta * lp_base, torch.tensor(float("-inf"), dtype=lp_post.dtype)
            )
        token = int(score.argmax())
        out.append(token)
        seq.append(token)
        if token == eos:
            break
    return out


def test_greedy_codit_equals_full_recompute_reference(models64, tokenizer):
    config = DecodingConfig(mode="codit", alpha=0.1, beta=1.0, temperature=0.0, max_new_tokens=12)
    got = run(models64, tokenizer, config, batch_size=3)
    for r in requests(tokenizer):
        want = reference_greedy(*models64, r.prompt_ids, 12, 0.1, 1.0, tokenizer.eos_token_id)
        assert got[r.key].token_ids == want, r.key
    # the contrast really changes the output, or this test would prove little
    direct = run(
        models64, tokenizer, DecodingConfig(mode="direct", temperature=0.0, max_new_tokens=12), 3
    )
    assert any(direct[k].token_ids != got[k].token_ids for k in got)


def test_left_padded_batch_equals_one_by_one(models64, tokenizer):
    config = DecodingConfig(mode="codit", temperature=0.0, max_new_tokens=10)
    batched = run(models64, tokenizer, config, batch_size=len(PROMPTS))
    for r in requests(tokenizer):
        alone = run(models64, tokenizer, config, batch_size=1, reqs=[r])
        assert alone[r.key].token_ids == batched[r.key].token_ids


def test_direct_mode_equals_hf_generate(models64, tokenizer):
    instruct, _ = models64
    config = DecodingConfig(mode="direct", temperature=0.0, max_new_tokens=10)
    got = run(models64, tokenizer, config, batch_size=2)
    for r in requests(tokenizer):
        out = instruct.generate(
            torch.tensor([r.prompt_ids]),
            max_new_tokens=10,
            do_sample=False,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
        assert got[r.key].token_ids == out[0, len(r.prompt_ids) :].tolist()


@pytest.mark.parametrize("filters", [dict(top_p=1.0, top_k=0), dict(top_p=0.9, top_k=50)])
def test_direct_mode_samples_exactly_like_alpha0_beta0(models64, tokenizer, filters):
    common = dict(temperature=1.0, max_new_tokens=10, seed=7, **filters)
    # direct mode ignores alpha and beta, whatever they are set to
    direct = run(
        models64, tokenizer, DecodingConfig(mode="direct", alpha=0.5, **common), batch_size=2
    )
    codit0 = run(
        models64,
        tokenizer,
        DecodingConfig(mode="codit", alpha=0.0, beta=0.0, **common),
        batch_size=3,
    )
    assert {k: c.token_ids for k, c in direct.items()} == {
        k: c.token_ids for k, c in codit0.items()
    }
    contrast = run(models64, tokenizer, DecodingConfig(mode="codit", **common), batch_size=2)
    assert any(contrast[k].token_ids != direct[k].token_ids for k in direct)


def test_direct_sampling_follows_the_instruct_models_distribution(tokenizer):
    """First-token frequencies over many seeds match softmax(logits) of the instruct model."""
    import tiny_models

    instruct = tiny_models.make_model(tokenizer, 1)
    prompt = encode(tokenizer, "hello fox")
    with torch.no_grad():
        probs = torch.softmax(instruct(torch.tensor([prompt])).logits[0, -1].double(), -1)
    engine = PairEngine(
        instruct,
        None,
        tokenizer,
        DecodingConfig(mode="direct", max_new_tokens=1),
        [],
        len(tokenizer),
        batch_size=64,
    )
    n = 3000
    counts = torch.zeros(len(tokenizer), dtype=torch.float64)
    for c in engine.generate(Request(f"s{i}", prompt) for i in range(n)):
        counts[c.token_ids[0]] += 1
    # total variation distance between the empirical and the model distribution, against what
    # sampling noise alone gives on average: E|freq - p| ~ sqrt(2 p (1 - p) / (pi n)) per token
    tv = 0.5 * (counts / n - probs).abs().sum().item()
    noise = 0.5 * torch.sqrt(2 * probs * (1 - probs) / (torch.pi * n)).sum().item()
    assert tv < 1.25 * noise, (tv, noise)
    # a distribution that is clearly off (the instruct probabilities squared) would be caught
    skewed = probs**2 / (probs**2).sum()
    assert 0.5 * (counts / n - skewed).abs().sum().item() > 1.25 * noise
    # tokens below alpha * max that CoDIT's mask would cut are still sampled in direct mode
    rare = probs < 0.01 * probs.max()
    assert probs[rare].sum() > 0.001 and counts[rare].sum() > 0


def test_sampling_is_seeded_per_record(models64, tokenizer):
    config = DecodingConfig(mode="codit", temperature=1.0, max_new_tokens=8, seed=3)
    a = run(models64, tokenizer, config, batch_size=5)
    b = run(models64, tokenizer, config, batch_size=2, continuous=False)
    assert {k: c.token_ids for k, c in a.items()} == {k: c.token_ids for k, c in b.items()}
    other = run(
        models64,
        tokenizer,
        DecodingConfig(mode="codit", temperature=1.0, max_new_tokens=8, seed=4),
        5,
    )
    assert {k: c.token_ids for k, c in a.items()} != {k: c.token_ids for k, c in other.items()}


def test_continuous_batching_with_mixed_lengths_equals_one_by_one(models64, tokenizer):
    config = DecodingConfig(mode="codit", temperature=0.0, max_new_tokens=20)
    reqs = requests(tokenizer, PROMPTS * 2, max_new=[3, 11, 1, 20, 5, 14, 2, 6, 8, 4])
    reqs = [Request(f"{r.key}-{i}", r.prompt_ids, r.max_new_tokens) for i, r in enumerate(reqs)]
    continuous = run(models64, tokenizer, config, batch_size=3, continuous=True, reqs=reqs)
    static = run(models64, tokenizer, config, batch_size=3, continuous=False, reqs=reqs)
    for r in reqs:
        alone = run(models64, tokenizer, config, batch_size=1, reqs=[r])[r.key]
        assert continuous[r.key].token_ids == alone.token_ids == static[r.key].token_ids
        assert continuous[r.key].completion_tokens == r.max_new_tokens  # per-row limits honoured
        assert continuous[r.key].finish_reason == "length"


def test_stop_ids_end_rows_and_finished_rows_emit_nothing_more(models64, tokenizer):
    config = DecodingConfig(mode="codit", temperature=0.0, max_new_tokens=12)
    free = run(models64, tokenizer, config, batch_size=5)
    # make each row's 4th greedy token a stop id: rows must end exactly there
    stops = sorted({c.token_ids[3] for c in free.values()})
    got = run(models64, tokenizer, config, batch_size=5, stop_ids=stops)
    for key, c in free.items():
        first = next(i for i, t in enumerate(c.token_ids) if t in stops)
        assert got[key].token_ids == c.token_ids[: first + 1]
        assert got[key].finish_reason == "stop"


def test_stop_strings_cut_the_text(models64, tokenizer):
    config = DecodingConfig(mode="direct", temperature=0.0, max_new_tokens=12)
    free = run(models64, tokenizer, config, batch_size=5)
    key, c = next((k, c) for k, c in free.items() if len(c.text) > 6)
    needle = c.text[3:6]
    stopped = run(
        models64,
        tokenizer,
        DecodingConfig(mode="direct", temperature=0.0, max_new_tokens=12, stop=(needle,)),
        batch_size=5,
    )[key]
    assert stopped.finish_reason == "stop"
    assert needle not in stopped.text and c.text.startswith(stopped.text)


def test_too_long_and_empty_prompts_are_reported_not_decoded(models64, tokenizer):
    config = DecodingConfig(mode="codit", temperature=0.0, max_new_tokens=4)
    reqs = [Request("long", [5] * 300), Request("empty", []), *requests(tokenizer)[:2]]
    got = run(models64, tokenizer, config, batch_size=2, reqs=reqs)
    assert got["long"].error and "300 tokens" in got["long"].error
    assert got["empty"].error
    assert got["r0"].error is None and got["r0"].completion_tokens == 4


def test_padded_embedding_rows_are_ignored(tokenizer):
    import tiny_models

    instruct = tiny_models.make_model(tokenizer, 1).double()
    base_padded = tiny_models.make_model(tokenizer, 2, vocab_rows=len(tokenizer) + 64).double()
    config = DecodingConfig(mode="codit", temperature=0.0, max_new_tokens=6)
    got = run((instruct, base_padded), tokenizer, config, batch_size=2)
    for r in requests(tokenizer):
        assert all(t < len(tokenizer) for t in got[r.key].token_ids)
