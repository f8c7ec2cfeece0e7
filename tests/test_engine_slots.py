"""The slot engine: admission, chunked prefill, memory budget, per-row settings, architectures.

References are independent of the engine: greedy decoding that recomputes the whole sequence
with the model's own attention and no cache every step, the rule written out by hand. Models
are float64 so that no comparison hinges on rounding.
"""

from __future__ import annotations

import warnings

import pytest
import torch

from codit.decoding.config import DecodingConfig, RowSettings
from codit.decoding.engine import PairEngine, Request
from codit.decoding.kvcache import CohortCache
from test_engine import PROMPTS, encode, reference_greedy, requests, run

GREEDY = dict(temperature=0.0)


def engine_for(models, tokenizer, config, batch_size=3, **kwargs):
    instruct, base = models
    return PairEngine(
        instruct,
        base if config.contrastive else None,
        tokenizer,
        config,
        [tokenizer.eos_token_id],
        len(tokenizer),
        batch_size,
        **kwargs,
    )


def tokens(completions):
    return {k: c.token_ids for k, c in completions.items()}


def test_admissions_in_the_middle_of_long_rows(models64, tokenizer):
    config = DecodingConfig(mode="codit", max_new_tokens=40, **GREEDY)
    base = requests(tokenizer)
    # two long rows hold their slots while short rows come and go through the third
    reqs = [Request("long-a", base[1].prompt_ids, 40), Request("long-b", base[3].prompt_ids, 35)]
    reqs += [Request(f"short-{i}", base[i % 5].prompt_ids, 1 + i % 3) for i in range(8)]
    got = run(models64, tokenizer, config, batch_size=3, reqs=reqs)
    for r in reqs:
        want = reference_greedy(*models64, r.prompt_ids, r.max_new_tokens, 0.01, 1.0, -1)
        assert got[r.key].token_ids == want, r.key


def test_chunked_long_prompt_equals_one_chunk(models64, tokenizer):
    config = DecodingConfig(mode="codit", max_new_tokens=8, **GREEDY)
    reqs = requests(tokenizer)
    whole = run(models64, tokenizer, config, batch_size=2, reqs=reqs)
    engine = engine_for(models64, tokenizer, config, batch_size=2)
    engine.prefill_chunk = 5  # every prompt here is longer: several chunks each
    assert all(len(r.prompt_ids) > 5 for r in reqs)
    chunked = {c.key: c for c in engine.generate(reqs)}
    assert tokens(chunked) == tokens(whole)
    for r in reqs[:2]:
        want = reference_greedy(*models64, r.prompt_ids, 8, 0.01, 1.0, tokenizer.eos_token_id)
        assert chunked[r.key].token_ids == want


def test_a_row_that_reaches_the_memory_budget_ends_at_its_slot(models64, tokenizer):
    config = DecodingConfig(mode="codit", max_new_tokens=40, **GREEDY)
    r = requests(tokenizer)[1]
    per_token = 2 * (2 * 2 * 2 * 8 * 8)  # 2 models x layers x (k, v) x kv heads x head dim x f64
    slot = len(r.prompt_ids) + 6
    engine = engine_for(
        models64, tokenizer, config, batch_size=2, kv_cache_memory=f"{2 * slot * per_token}B"
    )
    assert engine.kv_stats()["capacity_tokens"] == 2 * slot
    [done] = engine.generate([r])
    assert done.finish_reason == "length" and done.completion_tokens == 6
    free = run(models64, tokenizer, config, batch_size=2, reqs=[r])[r.key]
    assert done.token_ids == free.token_ids[:6]


def test_a_prompt_that_can_never_fit_is_an_error(models64, tokenizer):
    config = DecodingConfig(mode="codit", max_new_tokens=4, **GREEDY)
    engine = engine_for(models64, tokenizer, config, batch_size=2, kv_cache_memory="20KB")
    slot = engine.slot_tokens
    reqs = [Request("big", [5] * (slot + 3)), Request("small", [5, 6, 7])]
    got = {c.key: c for c in engine.generate(reqs)}
    assert got["big"].finish_reason == "error"
    assert "K/V cache" in got["big"].error and f"{slot + 3} tokens" in got["big"].error
    assert got["small"].error is None


@torch.no_grad()
def reference_obrien(instruct, base, ids, steps, alpha, beta):
    seq, out = list(ids), []
    for _ in range(steps):
        x = torch.tensor([seq])
        s_post, s_base = instruct(x).logits[0, -1], base(x).logits[0, -1]
        p_post = torch.softmax(s_post, -1)
        score = torch.where(
            p_post >= alpha * p_post.max(),
            (1 + beta) * s_post - beta * s_base,
            torch.tensor(float("-inf"), dtype=s_post.dtype),
        )
        seq.append(int(score.argmax()))
        out.append(seq[-1])
    return out


def test_obrien_rule_through_the_engine(models64, tokenizer):
    config = DecodingConfig(
        mode="codit", rule="obrien", alpha=0.1, beta=0.5, max_new_tokens=8, **GREEDY
    )
    got = run(models64, tokenizer, config, batch_size=3, stop_ids=[-1])
    for r in requests(tokenizer):
        assert got[r.key].token_ids == reference_obrien(*models64, r.prompt_ids, 8, 0.1, 0.5)


def test_stop_string_spanning_tokens(models64, tokenizer):
    config = DecodingConfig(mode="direct", max_new_tokens=12, **GREEDY)
    free = run(models64, tokenizer, config, batch_size=5)
    # a needle made of the end of one token and the start of the next
    for key, c in free.items():  # noqa: B007 - the key is used after the break
        pieces = [tokenizer.decode([t]) for t in c.token_ids]
        spans = [
            pieces[i][-1] + pieces[i + 1][:1]
            for i in range(len(pieces) - 1)
            if pieces[i] and pieces[i + 1] and len(pieces[i]) + len(pieces[i + 1]) > 2
        ]
        if spans:
            needle = spans[0]
            break
    else:
        pytest.skip("no two adjacent non-empty tokens")
    stopped = run(
        models64,
        tokenizer,
        DecodingConfig(mode="direct", max_new_tokens=12, stop=(needle,), **GREEDY),
        batch_size=5,
    )[key]
    assert stopped.finish_reason == "stop"
    assert needle not in stopped.text and free[key].text.startswith(stopped.text)
    assert free[key].text.find(needle) == len(stopped.text)


def test_base_model_on_another_device_object(models64, tokenizer):
    """The ``--base-device`` path: each model's inputs go to its own device, logits come back."""
    instruct, base = models64
    config = DecodingConfig(mode="codit", max_new_tokens=6, **GREEDY)
    engine = PairEngine(
        instruct,
        base.to(torch.device("cpu")),
        tokenizer,
        config,
        [tokenizer.eos_token_id],
        len(tokenizer),
        2,
    )
    got = {c.key: c for c in engine.generate(requests(tokenizer))}
    for r in requests(tokenizer):
        want = reference_greedy(instruct, base, r.prompt_ids, 6, 0.01, 1.0, tokenizer.eos_token_id)
        assert got[r.key].token_ids == want


def tiny(tokenizer, seed, config_cls, model_cls, **shape):
    """A tiny float64 model of any architecture, logits sharpened like ``tiny_models``."""
    torch.manual_seed(seed)
    config = config_cls(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        tie_word_embeddings=False,
        **shape,
    )
    model = model_cls(config)
    with torch.no_grad():
        model.get_output_embeddings().weight.mul_(8.0)
    return model.double().eval()


def gemma3(tokenizer, seed):
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    types = ["sliding_attention", "sliding_attention", "full_attention"]
    return tiny(
        tokenizer, seed, Gemma3TextConfig, Gemma3ForCausalLM,
        num_hidden_layers=3, head_dim=8, sliding_window=4, layer_types=types,
    )  # fmt: skip


def qwen3_mixed(tokenizer, seed):
    from transformers import Qwen3Config, Qwen3ForCausalLM

    types = ["full_attention", "sliding_attention", "sliding_attention"]
    return tiny(
        tokenizer, seed, Qwen3Config, Qwen3ForCausalLM, num_hidden_layers=3, head_dim=8,
        use_sliding_window=True, sliding_window=5, layer_types=types,
    )  # fmt: skip


def olmo3(tokenizer, seed):
    from transformers import Olmo3Config, Olmo3ForCausalLM

    # OLMo 3's default layer types: three sliding-window layers, then a full one
    return tiny(
        tokenizer, seed, Olmo3Config, Olmo3ForCausalLM, num_hidden_layers=4, sliding_window=4
    )


def qwen3_moe(tokenizer, seed):
    from transformers import Qwen3MoeConfig, Qwen3MoeForCausalLM

    return tiny(
        tokenizer, seed, Qwen3MoeConfig, Qwen3MoeForCausalLM, num_hidden_layers=2, head_dim=8,
        moe_intermediate_size=16, num_experts=4, num_experts_per_tok=2,
        experts_implementation="eager",  # grouped_mm has no float64 kernel on CPU
    )  # fmt: skip


@pytest.mark.parametrize("build", [gemma3, qwen3_mixed, olmo3, qwen3_moe])
def test_other_architectures_equal_the_no_cache_reference(tokenizer, build):
    instruct, base = build(tokenizer, 1), build(tokenizer, 2)
    types = getattr(instruct.config, "layer_types", None) or []
    if build is not qwen3_moe:  # windowed layers and full ones, responses past the window
        assert "sliding_attention" in types and "full_attention" in types
    config = DecodingConfig(mode="codit", max_new_tokens=14, **GREEDY)
    got = run((instruct, base), tokenizer, config, batch_size=3, stop_ids=[-1])
    for r in requests(tokenizer):
        want = reference_greedy(instruct, base, r.prompt_ids, 14, 0.01, 1.0, -1)
        assert got[r.key].token_ids == want, r.key
        assert len(r.prompt_ids) + 14 > 2 * (instruct.config.sliding_window or 0)


def test_a_model_without_logits_to_keep(tokenizer):
    from transformers import LlamaForCausalLM

    import tiny_models

    class Plain(LlamaForCausalLM):
        def forward(self, input_ids=None, position_ids=None, **kwargs):  # no logits_to_keep
            return super().forward(input_ids=input_ids, position_ids=position_ids, **kwargs)

    model = tiny_models.make_model(tokenizer, 1).double()
    plain = Plain(model.config).double().eval()
    plain.load_state_dict(model.state_dict())
    config = DecodingConfig(mode="direct", max_new_tokens=6, **GREEDY)
    a = run((plain, None), tokenizer, config, batch_size=2)
    b = run((model, None), tokenizer, config, batch_size=2)
    assert tokens(a) == tokens(b)


def test_cancel_frees_the_row(models64, tokenizer):
    config = DecodingConfig(mode="codit", max_new_tokens=20, **GREEDY)
    engine = engine_for(models64, tokenizer, config, batch_size=2)
    a, b, c = requests(tokenizer)[:3]
    for r in (a, b, c):
        engine.add(r)
    engine.step()
    engine.step()
    held = engine.kv_stats()["held_bytes"]
    assert engine.cancel(a.key) and engine.cancel(c.key)  # one running, one queued
    assert not engine.cancel("nobody")
    assert engine.kv_stats()["held_bytes"] < held and len(engine._batch) == 1
    out = engine.step()
    assert {x.key: x.finish_reason for x in out.completions} == {
        a.key: "cancelled",
        c.key: "cancelled",
    }
    finished = list(out.completions)
    while engine.has_work():
        finished += engine.step().completions
    got = {x.key: x for x in finished}
    alone = run(models64, tokenizer, config, batch_size=1, reqs=[b])[b.key]
    assert got[b.key].token_ids == alone.token_ids
    assert engine.kv_stats()["held_bytes"] == 0


MIXED = [
    RowSettings(),
    RowSettings(temperature=0.0),
    RowSettings(alpha=0.0, beta=0.0),  # a direct row in a codit engine
    RowSettings(top_k=5, top_p=0.8, seed=11),
    RowSettings(temperature=0.7, alpha=0.2, beta=0.5),
]


def test_mixed_row_settings_in_one_batch_equal_each_row_alone(models64, tokenizer):
    config = DecodingConfig(mode="codit", max_new_tokens=8, temperature=1.0, seed=3)
    base = requests(tokenizer)
    reqs = [Request(f"m{i}", base[i].prompt_ids, None, s) for i, s in enumerate(MIXED)]
    together = run(models64, tokenizer, config, batch_size=5, reqs=reqs, stop_ids=[-1])
    for r in reqs:
        alone = run(models64, tokenizer, config, batch_size=1, reqs=[r], stop_ids=[-1])
        assert together[r.key].token_ids == alone[r.key].token_ids, r.settings
    # the greedy row really is greedy: the no-cache reference
    want = reference_greedy(*models64, reqs[1].prompt_ids, 8, 0.01, 1.0, -1)
    assert together["m1"].token_ids == want


def test_direct_row_in_a_codit_engine_is_the_instruct_distribution(models64, tokenizer):
    common = dict(temperature=1.0, max_new_tokens=8, seed=5)
    reqs = requests(tokenizer)
    direct = run(models64, tokenizer, DecodingConfig(mode="direct", **common), 5, reqs=reqs)
    as_rows = [Request(r.key, r.prompt_ids, None, RowSettings(alpha=0.0, beta=0.0)) for r in reqs]
    mixed = as_rows[:3] + reqs[3:]  # three direct rows next to two codit rows
    got = run(models64, tokenizer, DecodingConfig(mode="codit", **common), 5, reqs=mixed)
    for r in as_rows[:3]:
        assert got[r.key].token_ids == direct[r.key].token_ids


def test_sampled_tokens_do_not_depend_on_the_batch_or_a_resume(models64, tokenizer):
    config = DecodingConfig(mode="codit", max_new_tokens=6, temperature=1.0, top_p=0.9, seed=1)
    reqs = [Request(f"x{i}", encode(tokenizer, PROMPTS[i % 5] + " " * (i % 3))) for i in range(32)]
    big = run(models64, tokenizer, config, batch_size=32, reqs=reqs)
    small = run(models64, tokenizer, config, batch_size=1, reqs=reqs[:6])
    resumed = run(models64, tokenizer, config, batch_size=7, reqs=reqs[20:])
    for part in (small, resumed):
        assert {k: big[k].token_ids for k in part} == tokens(part)
    assert len({tuple(c.token_ids) for c in big.values()}) > 5  # really sampled


def test_kv_stats_by_hand(models64, tokenizer):
    config = DecodingConfig(mode="codit", max_new_tokens=5, **GREEDY)
    engine = engine_for(models64, tokenizer, config, batch_size=3)
    per_token = 2 * (2 * 2 * 2 * 8 * 8)  # models x layers x (k, v) x kv heads x head dim x f64
    a, b = requests(tokenizer)[:2]
    engine.add(a)
    engine.add(b)
    engine.step()  # prefill both (their prompts) and draw one token each
    stats = engine.kv_stats()
    n = len(a.prompt_ids) + len(b.prompt_ids)
    assert stats["held_bytes"] == n * per_token
    assert stats["capacity_tokens"] == 3 * 256  # the models' context, per slot
    assert (len(a.prompt_ids), len(b.prompt_ids)) == (13, 47)
    # two cohorts (13 and 47 are far apart), each row with room for its prompt and the 5
    # tokens it may draw (the most it can reach, under the 16 positions of headroom)
    assert stats["cohorts"] == 2
    assert stats["allocated_bytes"] == ((13 + 5) + (47 + 5)) * per_token
    engine.step()  # each row feeds its token: one position more each
    assert engine.kv_stats()["held_bytes"] == (n + 2) * per_token
    while engine.has_work():
        engine.step()
    stats = engine.kv_stats()
    assert stats["held_bytes"] == 0 and stats["peak_held_bytes"] == (n + 8) * per_token


def test_no_warning_and_model_attention_restored(models64, tokenizer):
    instruct, base = models64
    before = instruct.config._attn_implementation
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run(models64, tokenizer, DecodingConfig(mode="codit", max_new_tokens=3, **GREEDY), 2)
    assert instruct.config._attn_implementation == before
    assert base.config._attn_implementation == before


def test_engine_private_apis(tokenizer):
    """What the slot attention relies on beyond documented APIs (tested on transformers 5.24).

    The config's ``_attn_implementation`` setter selects the attention function per forward,
    unknown keywords reach the attention function, and the mask builders skip implementations
    that registered no mask function. If one of these changes, this test says which.
    """
    from transformers.masking_utils import create_causal_mask

    import tiny_models
    from codit.decoding import attention

    attention.register()
    model = tiny_models.make_model(tokenizer, 1)
    seen = []

    def spy(module, query, key, value, mask, **kwargs):
        seen.append((module.layer_idx, kwargs.get("codit_slots"), mask))
        return attention.slot_attention_forward(module, query, key, value, mask, **kwargs)

    from transformers import AttentionInterface

    AttentionInterface.register(attention.NAME, spy)
    try:
        before = model.config._attn_implementation
        store = CohortCache()
        store.resize(0, 1, 8)
        cache = attention.Prefill(store, 0, 0, 0, 3)
        with attention.slot_attention(model):
            model(
                input_ids=torch.tensor([[5, 6, 7]]),
                position_ids=torch.tensor([[0, 1, 2]]),
                use_cache=False,
                codit_slots=cache,
            )
            embeds = torch.zeros(1, 3, 32)
            assert (
                create_causal_mask(model.config, embeds, None, None, torch.arange(3)[None]) is None
            )
        assert model.config._attn_implementation == before
        assert [s[0] for s in seen] == [0, 1], "the attention function was not called per layer"
        assert all(s[1] is cache for s in seen), "the codit_slots keyword did not reach attention"
        assert all(s[2] is None for s in seen), "a mask was built for the custom attention"
    finally:
        attention.register()


def test_bucketed_graph_step_equals_the_plain_step_on_cpu(models64, tokenizer):
    """The step the CUDA graphs capture (padded width, bucketed span), run eagerly here."""
    from codit.decoding import graphs

    class Eager:
        keys: list = []

        def run(self, key, step):
            self.keys.append(key)
            return step()

    assert [graphs.width_bucket(w, 40) for w in (1, 3, 5, 9, 33, 40)] == [1, 4, 8, 16, 40, 40]
    assert [graphs.span_bucket(s, 600) for s in (1, 256, 257, 599)] == [256, 256, 512, 600]
    config = DecodingConfig(mode="codit", max_new_tokens=20, **GREEDY)
    reqs = requests(tokenizer, PROMPTS * 2, max_new=[3, 11, 1, 20, 5, 14, 2, 6, 8, 4])
    reqs = [Request(f"{r.key}-{i}", r.prompt_ids, r.max_new_tokens) for i, r in enumerate(reqs)]
    plain = run(models64, tokenizer, config, batch_size=5, reqs=reqs)
    engine = engine_for(models64, tokenizer, config, batch_size=5, fixed_slots=True)
    engine.cuda_graphs, engine._graphs = True, Eager()
    got = {c.key: c for c in engine.generate(reqs)}
    assert tokens(got) == tokens(plain)
    widths, spans = {k[0] for k in Eager.keys}, {k[1] for k in Eager.keys}
    assert len(widths) > 1 and widths <= {1, 2, 4, 5} and spans == {256}


def test_codit_sampling_follows_the_rule_computed_by_hand(tokenizer):
    """First-token frequencies over many records match p_post / p_base^beta on the kept set."""
    import tiny_models

    instruct, base = tiny_models.make_model(tokenizer, 1), tiny_models.make_model(tokenizer, 2)
    prompt = encode(tokenizer, "hello fox")
    alpha, beta = 0.05, 0.5
    with torch.no_grad():
        x = torch.tensor([prompt])
        p_post = torch.softmax(instruct(x).logits[0, -1].double(), -1)
        p_base = torch.softmax(base(x).logits[0, -1].double(), -1)
    keep = p_post >= alpha * p_post.max()
    want = torch.where(keep, p_post / p_base**beta, torch.zeros_like(p_post))
    want = want / want.sum()
    config = DecodingConfig(mode="codit", alpha=alpha, beta=beta, max_new_tokens=1)
    engine = PairEngine(instruct, base, tokenizer, config, [], len(tokenizer), batch_size=64)
    n = 3000
    counts = torch.zeros(len(tokenizer), dtype=torch.float64)
    for c in engine.generate(Request(f"s{i}", prompt) for i in range(n)):
        counts[c.token_ids[0]] += 1
    assert counts[~keep].sum() == 0  # nothing off the plausible set
    tv = 0.5 * (counts / n - want).abs().sum().item()
    noise = 0.5 * torch.sqrt(2 * want * (1 - want) / (torch.pi * n)).sum().item()
    assert tv < 1.25 * noise, (tv, noise)
    # the instruct distribution alone (no contrast) would be caught
    plain = torch.where(keep, p_post, torch.zeros_like(p_post))
    plain = plain / plain.sum()
    assert 0.5 * (counts / n - plain).abs().sum().item() > 1.25 * noise


def test_cohorts_grow_split_and_free_mid_run_and_stay_exact(models64, tokenizer):
    """Rows of very different lengths join and leave mid-run; cohorts open, grow and close."""
    config = DecodingConfig(mode="codit", max_new_tokens=40, **GREEDY)
    base = requests(tokenizer)
    lengths = [40, 3, 37, 1, 25, 8, 33, 2, 17, 40]
    reqs = [Request(f"c{i}", base[i % 5].prompt_ids, n) for i, n in enumerate(lengths)]
    engine = engine_for(models64, tokenizer, config, batch_size=4)
    seen_cohorts, done = set(), {}
    for r in reqs:
        engine.add(r)
    while engine.has_work():
        done.update({c.key: c for c in engine.step().completions})
        seen_cohorts.add(len(engine.layout.cohorts))
        segments = engine.layout.segments()
        assert sum(s[2] for s in segments) == len(engine._batch)  # no holes
        assert [r.slot for r in engine._batch] == list(range(len(engine._batch)))
    stats = engine.kv_stats()
    assert stats["growths"] > 0 and max(seen_cohorts) > 1 and stats["cohorts"] == 0
    assert stats["allocated_bytes"] == 0 and stats["held_bytes"] == 0
    assert stats["peak_allocated_bytes"] <= 1.6 * stats["peak_held_bytes"]
    for r in reqs:
        alone = run(models64, tokenizer, config, batch_size=1, reqs=[r])[r.key]
        assert done[r.key].token_ids == alone.token_ids, r.key
    fixed = engine_for(models64, tokenizer, config, batch_size=4, fixed_slots=True)
    assert tokens({c.key: c for c in fixed.generate(reqs)}) == tokens(done)
    assert len(fixed.layout.cohorts) == 1 and fixed.kv_stats()["allocated_bytes"] == (
        4 * fixed.slot_tokens * 2 * (2 * 2 * 2 * 8 * 8)
    )
