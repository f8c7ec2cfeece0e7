"""The family matrix: tiny pairs of the real architectures with the real tokenizers and templates.

For every family of ``../shared/data/model-families/families.json`` (see ``families.py``), one
tiny random-weight pair is built per session (``family_pair`` in ``conftest.py``) and checked
through codit's public API (``LocalGenerator`` and ``codit generate``), never the engine's
internals:

- greedy CoDIT equals a reference that recomputes both models on the whole sequence each step
  (no KV cache) and applies the rule by hand; direct mode equals ``transformers``' ``generate``;
- each id of the instruct model's EOS list stops a row, forced by editing its ``lm_head`` row so
  that it becomes the argmax after k tokens;
- prompts carry one BOS; Qwen3's thinking switch changes the prompt; codit finds by rendering
  what each template does with a system prompt, and the meta of every family's
  ``codit generate`` output says it;
- that output trains a tiny student of another family (``codit train sft``, 2 steps of one
  record), which is then evaluated (``codit eval ifeval --model``, 2 prompts): every family is
  a teacher once and a student once.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

import families as F

pytestmark = pytest.mark.skipif(
    not (F.SHARED / "families.json").is_file(),
    reason=f"the real tokenizers and templates are not at {F.SHARED} (clone with shared/ beside the repo)",
)

NAMES = list(F.FAMILIES)
PROMPTS = [
    "Write a haiku about the sea.",
    "List three fruits, all in lowercase, and nothing else.",
    "hi",
]
ALPHA, BETA, MAX_NEW = 0.1, 1.0, 10
# What each template does with a system prompt: known facts, checked against codit's detection.
SYSTEM = {
    "qwen3": ("own turn", False),
    "qwen3-moe": ("own turn", False),
    "qwen2.5": ("own turn", True),
    "llama3.1": ("own turn", False),
    "mistral-v0.3": ("folded into the last user turn", False),
    "olmo2": ("own turn", False),
    "gemma3": ("folded into the first user turn", False),
    "gemma3-1b": ("folded into the first user turn", False),
}


@pytest.fixture(scope="module", params=NAMES)
def built(request: pytest.FixtureRequest, family_pair: Any) -> F.BuiltPair:
    return family_pair(request.param)


@pytest.fixture(scope="module")
def gen(built: F.BuiltPair) -> Any:
    """The family's pair loaded once through codit (fp32 on the CPU)."""
    from codit.generation.texts import LocalGenerator

    return LocalGenerator(str(built.instruct), str(built.base), device="cpu")


def conversations() -> list[list[dict[str, str]]]:
    return [[{"role": "user", "content": p}] for p in PROMPTS]


def prompt_of(gen: Any, built: F.BuiltPair, messages: list[dict[str, str]]) -> list[int]:
    from codit.models.chat import prompt_ids

    return prompt_ids(gen.pair.tokenizer, messages, built.family.template_kwargs)


@torch.no_grad()
def last_logits(model: Any, seq: list[int], vocab: int) -> torch.Tensor:
    """The next-token logits from the whole sequence, no cache (``lm_head`` on the last row only)."""
    out = model(input_ids=torch.tensor([seq]), use_cache=False, logits_to_keep=1)
    return out.logits[0, -1, :vocab].double()


@torch.no_grad()
def reference(
    gen: Any, ids: list[int], steps: int, contrast: bool, banned: list[int] | None = None
) -> list[int]:
    """Greedy decoding by full recompute: CoDIT's rule by hand, or the instruct model alone."""
    pair, vocab, out, seq = gen.pair, gen.pair.vocab_size, [], list(ids)
    for _ in range(steps):
        lp_post = torch.log_softmax(last_logits(pair.instruct.model, seq, vocab), -1)
        score = lp_post
        if contrast:
            lp_base = torch.log_softmax(last_logits(pair.base.model, seq, vocab), -1)
            keep = lp_post >= lp_post.max() + torch.log(torch.tensor(ALPHA, dtype=lp_post.dtype))
            score = torch.where(
                keep, lp_post - BETA * lp_base, torch.tensor(float("-inf")).double()
            )
        if banned:
            score[banned] = float("-inf")
        token = int(score.argmax())
        out.append(token)
        seq.append(token)
        if token in pair.stop_ids:
            break
    return out


def expected(gen: Any, tokens: list[int]) -> tuple[str, int, str]:
    """(text, completion tokens, finish reason) that codit reports for these tokens."""
    stopped = bool(tokens) and tokens[-1] in gen.pair.stop_ids
    body = tokens[:-1] if stopped else tokens
    text = gen.pair.tokenizer.decode(body, skip_special_tokens=True)
    return text, len(tokens), "stop" if stopped else "length"


def got(result: Any) -> tuple[str, int, str]:
    return result.text, result.completion_tokens, result.finish_reason


def test_pair_facts_match_the_family(gen: Any, built: F.BuiltPair) -> None:
    tokenizer = gen.pair.tokenizer
    assert gen.pair.stop_ids == sorted(built.instruct_eos)
    rows = F.rows(built.family)
    assert gen.pair.vocab_size == min(len(tokenizer), rows)
    assert gen.pair.instruct.info["architecture"] == built.family.architecture
    assert type(gen.pair.base.model).__name__ == built.family.architecture
    base_eos = json.loads((built.base / "generation_config.json").read_text())["eos_token_id"]
    assert sorted(base_eos if isinstance(base_eos, list) else [base_eos]) == built.base_eos
    ids = prompt_of(gen, built, conversations()[0])
    if tokenizer.bos_token_id is not None:  # one BOS, where the template writes it
        assert ids[0] == tokenizer.bos_token_id and ids.count(tokenizer.bos_token_id) == 1
    # the prompt length codit reports is the template's own tokenisation
    rendered = tokenizer.apply_chat_template(
        conversations()[0], add_generation_prompt=True, **built.family.template_kwargs
    )
    rendered = rendered["input_ids"] if hasattr(rendered, "keys") else rendered
    assert ids == list(rendered)
    if built.family.sharded:
        assert len(list(built.instruct.glob("model-*.safetensors"))) > 1


def test_greedy_codit_equals_the_no_cache_reference(gen: Any, built: F.BuiltPair) -> None:
    results = gen.generate(
        conversations(),
        "codit",
        alpha=ALPHA,
        beta=BETA,
        max_new_tokens=MAX_NEW,
        batch_size=2,
        chat_template_kwargs=built.family.template_kwargs,
    )
    wants = []
    for conv, result in zip(conversations(), results, strict=True):
        want = reference(gen, prompt_of(gen, built, conv), MAX_NEW, contrast=True)
        assert got(result) == expected(gen, want)
        assert result.prompt_tokens == len(prompt_of(gen, built, conv))
        wants.append(want)
    # the contrast changes some output, or this test would prove little (stops at the first)
    assert any(
        reference(gen, prompt_of(gen, built, conv), MAX_NEW, contrast=False) != want
        for conv, want in zip(conversations(), wants, strict=True)
    )


def test_direct_equals_hf_generate(gen: Any, built: F.BuiltPair) -> None:
    results = gen.generate(
        conversations(),
        "direct",
        max_new_tokens=MAX_NEW,
        batch_size=3,
        chat_template_kwargs=built.family.template_kwargs,
    )
    model, vocab = gen.pair.instruct.model, gen.pair.vocab_size
    rows = model.get_output_embeddings().weight.shape[0]
    for conv, result in zip(conversations(), results, strict=True):
        ids = prompt_of(gen, built, conv)
        out = model.generate(
            torch.tensor([ids]),
            attention_mask=torch.ones(1, len(ids), dtype=torch.long),
            max_new_tokens=MAX_NEW,
            do_sample=False,
            eos_token_id=gen.pair.stop_ids,
            pad_token_id=gen.pair.tokenizer.pad_token_id or 0,
            suppress_tokens=list(range(vocab, rows)) or None,  # padded rows are never scored
        )
        assert got(result) == expected(gen, out[0, len(ids) :].tolist())


def test_each_eos_id_stops_a_row(gen: Any, built: F.BuiltPair) -> None:
    """Row i is made to emit the i-th EOS id after k_i = 2 + i tokens, and must stop there."""
    pair = gen.pair
    stops = pair.stop_ids
    convs = [conversations()[i % len(PROMPTS)] for i in range(len(stops))]
    ks = [2 + i for i in range(len(stops))]
    # the free CoDIT trajectory with every EOS id banned, and lm_head's input along it
    head = pair.instruct.model.get_output_embeddings()
    assert head.weight.data_ptr() != pair.instruct.model.get_input_embeddings().weight.data_ptr()
    hidden, top = [], []
    for conv, k in zip(convs, ks, strict=True):
        ids = prompt_of(gen, built, conv)
        path = reference(gen, ids, k + 1, contrast=True, banned=stops)
        seen: list[torch.Tensor] = []
        hook = head.register_forward_hook(lambda _m, inp, _o, seen=seen: seen.append(inp[0][0]))
        with torch.no_grad():
            logits = pair.instruct.model(input_ids=torch.tensor([ids + path[:k]])).logits[0]
        hook.remove()
        span = slice(len(ids) - 1, len(ids) + k)
        hidden.append(seen[0][span].double())
        allowed = logits[span, : pair.vocab_size].double().clone()
        allowed[:, stops] = float("-inf")
        top.append(allowed.max(-1).values)
    h, m = torch.cat(hidden), torch.cat(top)
    original = head.weight.data[stops].clone()
    try:
        offsets = torch.tensor([0, *torch.cumsum(torch.tensor([k + 1 for k in ks]), 0).tolist()])
        for i, eos in enumerate(stops):
            target = m - 30.0  # far below the best token: cut by the plausibility mask
            target[offsets[i] + ks[i]] = m[offsets[i] + ks[i]] + 30.0  # the argmax at step k_i
            row = torch.linalg.lstsq(h, target.unsqueeze(1)).solution[:, 0]
            assert (h @ row - target).abs().max() < 1e-3
            head.weight.data[eos] = row.to(head.weight.dtype)
        results = gen.generate(
            convs,
            "codit",
            alpha=ALPHA,
            beta=BETA,
            max_new_tokens=max(ks) + 4,
            batch_size=len(convs),
            chat_template_kwargs=built.family.template_kwargs,
        )
    finally:
        head.weight.data[stops] = original
    for i, (conv, k, result) in enumerate(zip(convs, ks, results, strict=True)):
        path = reference(gen, prompt_of(gen, built, conv), k, contrast=True, banned=stops)
        assert result.finish_reason == "stop", (stops[i], result)
        assert result.completion_tokens == k + 1  # k tokens, then the EOS id
        assert result.text == pair.tokenizer.decode(path, skip_special_tokens=True)


def test_system_prompt_handling_is_detected_by_rendering(gen: Any, built: F.BuiltPair) -> None:
    from codit.models.chat import system_handling

    handling = system_handling(gen.pair.tokenizer, built.family.template_kwargs)
    assert (handling["placement"], handling["default_when_none"]) == SYSTEM[built.family.name]


SYSTEM_PROMPT = "Answer in French."
# `codit generate`'s input for each family: one row with a system prompt, two without
ROWS = [
    {"id": "plain", "messages": [{"role": "user", "content": PROMPTS[0]}]},
    {
        "id": "with-system",
        "messages": [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": PROMPTS[0]},
        ],
    },
    {"id": "short", "messages": [{"role": "user", "content": PROMPTS[2]}]},
]


@pytest.fixture(scope="module")
def generated(built: F.BuiltPair, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The family's greedy CoDIT output, written by ``codit generate`` (one record a row)."""
    from codit.cli.main import main

    root = tmp_path_factory.mktemp(f"generated-{built.family.name}")
    inp, out = root / "in.jsonl", root / "codit.jsonl"
    inp.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    kwargs = [f"{k}={json.dumps(v)}" for k, v in built.family.template_kwargs.items()]
    args = ["generate", "--instruct", str(built.instruct), "--base", str(built.base)]
    args += ["--input", str(inp), "--output", str(out), "--max-new-tokens", "4"]
    args += ["--temperature", "0", "--device", "cpu", "--no-progress"]
    assert main(args + (["--chat-template-kwargs", ",".join(kwargs)] if kwargs else [])) == 0
    return out


def test_system_prompt_handling_is_in_the_meta(
    gen: Any, built: F.BuiltPair, generated: Path
) -> None:
    from codit.generation.run import load_records
    from codit.models.chat import NONE_GIVEN, TEMPLATE_DEFAULT

    records = {r["id"]: r for r in load_records(generated)}
    assert sorted(records) == sorted(r["id"] for r in ROWS)
    placement, default = SYSTEM[built.family.name]
    meta = {key: r["meta"] for key, r in records.items()}
    assert meta["with-system"]["system_turn"] == placement
    for key in ("plain", "short"):
        assert meta[key]["system_turn"] == (TEMPLATE_DEFAULT if default else NONE_GIVEN)
    # and the system prompt really is in the prompt the models saw, where the meta says
    with_system = ROWS[1]["messages"]
    ids = prompt_of(gen, built, with_system)
    assert SYSTEM_PROMPT in gen.pair.tokenizer.decode(ids)
    assert meta["with-system"]["prompt_tokens"] == len(ids)
    assert records["with-system"]["messages"][:2] == with_system


def test_thinking_switch(gen: Any, built: F.BuiltPair) -> None:
    """Qwen3: ``enable_thinking=false`` writes an empty think block; other families ignore it."""
    conv = conversations()[0]
    tokenizer = gen.pair.tokenizer
    from codit.models.chat import prompt_ids

    on = prompt_ids(tokenizer, conv, {"enable_thinking": True})
    off = prompt_ids(tokenizer, conv, {"enable_thinking": False})
    if not built.family.name.startswith("qwen3"):
        assert on == off
        return
    block = tokenizer("<think>\n\n</think>\n\n", add_special_tokens=False)["input_ids"]
    assert off == on + block
    results = gen.generate(
        [conv, conv],
        "codit",
        max_new_tokens=MAX_NEW,
        batch_size=2,
        alpha=ALPHA,
        beta=BETA,
        chat_template_kwargs={"enable_thinking": True},
    )
    assert results[0].prompt_tokens == len(on)
    assert got(results[0]) == expected(gen, reference(gen, on, MAX_NEW, contrast=True))


def student_of(name: str) -> str:
    """The student family for ``name``'s output: two along the matrix, so never the same
    tokenizer (Qwen3 -> Qwen2.5, Qwen3-MoE -> Llama 3.1, ..., Gemma 3 1B -> Qwen3-MoE), and
    every architecture is a student once."""
    return NAMES[(NAMES.index(name) + 2) % len(NAMES)]


IFEVAL = F.SHARED.parent / "ifeval" / "input_data.jsonl"


@pytest.mark.skipif(
    not IFEVAL.is_file(), reason="the shared IFEval prompts are not beside the repo"
)
def test_a_student_of_another_family_trains_on_the_output_and_is_evaluated(
    built: F.BuiltPair, generated: Path, family_pair: Any, tmp_path: Path
) -> None:
    """The family's output -> ``codit train sft`` on another family's base -> ``codit eval ifeval``."""
    pytest.importorskip("trl", reason="needs the train extra: pip install 'codit[train]'")
    from codit.cli.main import main

    student = family_pair(student_of(built.family.name))
    assert student.family.facts_key != built.family.facts_key
    trained = tmp_path / "student"
    args = ["train", "sft", "--model", str(student.base), "--data", str(generated)]
    args += ["--output", str(trained), "--max-steps", "2", "--batch-size", "1"]
    assert main([*args, "--max-length", "64", "--eval-split", "0", "--device", "cpu"]) == 0
    manifest = json.loads((trained / "codit_train_config.json").read_text())
    assert manifest["metrics"]["steps"] == 2
    if student.family.name == "llama3.1":  # the base tokenizer has no template
        assert manifest["data"]["chat_template"] == "codit fallback"
    config = json.loads((trained / "config.json").read_text())
    assert config["architectures"] == [student.family.architecture]
    report = tmp_path / "ifeval"
    args = ["eval", "ifeval", "--model", str(trained), "--input-data", str(IFEVAL)]
    args += ["--limit", "2", "--max-new-tokens", "4", "--output", str(report)]
    assert main([*args, "--device", "cpu", "--no-progress"]) == 0
    metrics = json.loads((report / "metrics.json").read_text())
    assert metrics["num_prompts"] == 2
