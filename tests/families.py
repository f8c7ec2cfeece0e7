"""Tiny random-weight pairs of the real model families, with their real tokenizers and templates.

The tokenizers, chat templates and facts (``families.json``: embedding rows, BOS/EOS/pad ids,
the instruct and base EOS lists) come from ``../shared/data/model-families``; the weights are
random and tiny (2 layers, hidden 32), so a pair builds in a second or two, once a test session
(``cached_pair``, shared by the pytest-xdist workers). What a user meets
with a hub pair is all there: multi-EOS generation configs, padded embedding matrices, Qwen3's
thinking switch, Llama 3.1's base tokenizer without a template, Gemma's multimodal class with a
vision tower and sliding-window layers, sharded safetensors (Llama). Gemma 3's tokenizer is not
available offline; a stand-in byte-level tokenizer carries its real special ids.
"""

from __future__ import annotations

import gzip
import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "model-families"
HIDDEN = 32
LM_HEAD_SCALE = 40.0  # random init gives near-uniform logits; this separates greedy choices


@dataclass(frozen=True)
class Family:
    """One family of the matrix: which facts, which architecture, what is special about it."""

    name: str
    facts_key: str  # the entry of families.json
    architecture: str
    rows_key: str | None = None  # which vocab_size when families.json lists several
    template_kwargs: dict[str, Any] = field(default_factory=dict)
    sharded: bool = False


FAMILIES = {
    f.name: f
    for f in (
        Family("qwen3", "qwen3", "Qwen3ForCausalLM", template_kwargs={"enable_thinking": False}),
        Family(
            "qwen3-moe",
            "qwen3",
            "Qwen3MoeForCausalLM",
            template_kwargs={"enable_thinking": False},
        ),
        Family("qwen2.5", "qwen2.5", "Qwen2ForCausalLM", rows_key="7B"),
        Family("llama3.1", "llama3.1", "LlamaForCausalLM", sharded=True),
        Family("mistral-v0.3", "mistral-v0.3", "MistralForCausalLM"),
        Family("olmo2", "olmo2", "Olmo2ForCausalLM"),
        Family("gemma3", "gemma3", "Gemma3ForConditionalGeneration", rows_key="4b_and_up"),
        Family("gemma3-1b", "gemma3", "Gemma3ForCausalLM", rows_key="1b"),
    )
}


def facts(family: Family) -> dict[str, Any]:
    return json.loads((SHARED / "families.json").read_text())[family.facts_key]


def rows(family: Family) -> int:
    """The real embedding rows (``vocab_size``) of the family's checkpoints."""
    value = facts(family)["vocab_size"]
    if isinstance(value, dict):
        value = value[family.rows_key]
    return int(re.match(r"\d+", str(value)).group())  # type: ignore[union-attr]


def eos_lists(family: Family) -> tuple[list[int], list[int]]:
    """(the instruct model's generation EOS ids, the base model's)."""
    f = facts(family)
    instruct = f.get("instruct_generation_eos") or [f["eos_token_id"]]
    base = f.get("base_eos") or [f.get("eos_token_id", instruct[0])]
    return list(instruct), list(base)


# -- tokenizers ------------------------------------------------------------------------------


def write_tokenizer(family: Family, out: Path, base: bool = False) -> Path:
    """Write the family's tokenizer files into ``out`` (the base one: its own config)."""
    out.mkdir(parents=True, exist_ok=True)
    if family.facts_key == "gemma3":
        return _write_gemma_stand_in(out)
    src = SHARED / facts(family)["tokenizer_dir"]
    with gzip.open(src / "tokenizer.json.gz", "rb") as f, (out / "tokenizer.json").open("wb") as g:
        shutil.copyfileobj(f, g)
    base_config = src / "tokenizer_config.base.json"
    if base and base_config.exists():  # a base tokenizer without a chat template
        settings = json.loads(base_config.read_text())
    else:
        settings = json.loads((src / "tokenizer_config.json").read_text())
        shutil.copy(src / "chat_template.jinja", out / "chat_template.jinja")
    (out / "tokenizer_config.json").write_text(json.dumps(_for_installed(settings), indent=2))
    return out


def _for_installed(settings: dict[str, Any]) -> dict[str, Any]:
    """The shipped configs are in transformers 5's format; transformers 4 names two keys otherwise."""
    import transformers

    if int(transformers.__version__.split(".")[0]) >= 5:
        return settings
    settings = dict(settings, tokenizer_class="PreTrainedTokenizerFast")
    extra = settings.pop("extra_special_tokens", None)
    if isinstance(extra, list):
        settings["additional_special_tokens"] = extra
    return settings


def _write_gemma_stand_in(out: Path) -> Path:
    """Byte-level BPE with Gemma 3's special ids where the real tokenizer has them.

    Ids: 0 pad, 1 eos, 2 bos, 3 unk, 105/106 start/end of turn, 255999/256000 start/end of image,
    262144 the image soft token (so ``len(tokenizer)`` is 262145, one more than the 1B model's
    262144 embedding rows, as with the real Gemma 3 1B). Bytes sit at ids 1000-1255, a few merges
    after them, and ``<unusedN>`` fills the rest. Like the real one it adds BOS when asked to.
    """
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    gemma = json.loads((SHARED / "families.json").read_text())["gemma3"]["special"]
    special = {
        "<pad>": 0,
        "<eos>": 1,
        "<bos>": 2,
        "<unk>": 3,
        "<start_of_turn>": gemma["<start_of_turn>"],
        "<end_of_turn>": gemma["<end_of_turn>"],
        "<start_of_image>": gemma["boi"],
        "<end_of_image>": gemma["eoi"],
        "<image_soft_token>": gemma["image"],
    }
    size = max(special.values()) + 1
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab: dict[str, int] = {}
    for i, ch in enumerate(alphabet):
        vocab[ch] = 1000 + i
    merges = []
    for word in ("Ġthe", "Ġa", "in", "er", "on", "an", "Ġo", "Ġw", "re", "at"):
        left, right = word[:-1], word[-1]
        if left not in vocab:
            continue
        vocab[word] = 1000 + len(vocab)
        merges.append((left, right))
    taken = set(vocab.values()) | set(special.values())
    vocab.update(special)
    for i in range(size):
        if i not in taken:
            vocab[f"<unused{i}>"] = i
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in special])
    tok.post_processor = processors.TemplateProcessing(
        single="<bos> $A", pair="<bos> $A $B", special_tokens=[("<bos>", 2)]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
        unk_token="<unk>",
        additional_special_tokens=["<start_of_turn>", "<end_of_turn>"],
        model_max_length=131072,
    )
    fast.chat_template = (SHARED / "gemma3" / "chat_template.jinja").read_text()
    fast.save_pretrained(out)
    return out


# -- models ----------------------------------------------------------------------------------


def make_config(family: Family, bos: int | None, eos: list[int], pad: int | None) -> Any:
    """A tiny config of the family's real architecture class with the real embedding rows."""
    import transformers as tf

    common: dict[str, Any] = dict(
        vocab_size=rows(family),
        hidden_size=HIDDEN,
        intermediate_size=2 * HIDDEN,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        tie_word_embeddings=False,  # the EOS test edits lm_head rows alone
        bos_token_id=bos,
        eos_token_id=eos[0],
        pad_token_id=pad,
    )
    arch = family.architecture
    if arch == "Qwen3ForCausalLM":
        return tf.Qwen3Config(head_dim=8, **common)
    if arch == "Qwen3MoeForCausalLM":
        return tf.Qwen3MoeConfig(
            head_dim=8,
            num_experts=4,
            num_experts_per_tok=2,
            moe_intermediate_size=HIDDEN,
            decoder_sparse_step=1,
            **common,
        )
    if arch == "Qwen2ForCausalLM":
        return tf.Qwen2Config(**common)
    if arch == "LlamaForCausalLM":
        return tf.LlamaConfig(**common)
    if arch == "MistralForCausalLM":
        return tf.MistralConfig(sliding_window=None, **common)
    if arch == "Olmo2ForCausalLM":
        return tf.Olmo2Config(**common)
    # Gemma 3: sliding-window layers with a window shorter than the responses
    text = dict(
        common,
        head_dim=8,
        query_pre_attn_scalar=8,
        sliding_window=8,
        layer_types=["sliding_attention", "full_attention"],
    )
    if arch == "Gemma3ForCausalLM":
        return tf.Gemma3TextConfig(**text)
    special = facts(family)["special"]
    vision = tf.SiglipVisionConfig(
        hidden_size=HIDDEN,
        intermediate_size=2 * HIDDEN,
        num_hidden_layers=1,
        num_attention_heads=2,
        image_size=28,
        patch_size=14,
    )
    return tf.Gemma3Config(
        text_config=tf.Gemma3TextConfig(**text).to_dict(),
        vision_config=vision.to_dict(),
        mm_tokens_per_image=4,
        boi_token_index=special["boi"],
        eoi_token_index=special["eoi"],
        image_token_index=special["image"],
        tie_word_embeddings=False,
        bos_token_id=bos,
        eos_token_id=eos,
        pad_token_id=pad,
    )


def make_model(family: Family, seed: int, eos: list[int], tokenizer: Any) -> Any:
    import transformers as tf

    bos, pad = tokenizer.bos_token_id, tokenizer.pad_token_id
    if pad is None:
        pad = facts(family).get("pad_token_id", eos[-1])
    config = make_config(family, bos, eos, pad)
    config.architectures = [family.architecture]
    torch.manual_seed(seed)
    model = getattr(tf, family.architecture)(config)
    with torch.no_grad():
        model.get_output_embeddings().weight.mul_(LM_HEAD_SCALE)
    model.generation_config = tf.GenerationConfig(
        bos_token_id=bos, eos_token_id=eos if len(eos) > 1 else eos[0], pad_token_id=pad
    )
    return model.eval()


@dataclass
class BuiltPair:
    """A family's tiny pair on disk, and the facts the tests check it against."""

    family: Family
    instruct: Path
    base: Path
    instruct_eos: list[int]
    base_eos: list[int]


def build_pair(family: Family, root: Path) -> BuiltPair:
    """Write ``root/instruct`` and ``root/base`` (random weights, real tokenizer and template)."""
    from transformers import AutoTokenizer

    instruct_eos, base_eos = eos_lists(family)
    paths = []
    for name, seed, eos, base in (
        ("instruct", 1, instruct_eos, False),
        ("base", 2, base_eos, True),
    ):
        path = write_tokenizer(family, root / name, base=base)
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = make_model(family, seed, eos, tokenizer)
        model.save_pretrained(path, max_shard_size="8MB" if family.sharded else "10GB")
        paths.append(path)
    return BuiltPair(family, paths[0], paths[1], instruct_eos, base_eos)


def cached_pair(family: Family, cache: Path) -> BuiltPair:
    """The family's pair under ``cache``, built by the first test process that asks for it.

    A flock serialises the build, so pytest-xdist workers sharing ``cache`` build each pair once
    and never read a half-written one; the tests only read the folders.
    """
    import fcntl

    cache.mkdir(parents=True, exist_ok=True)
    root, done = cache / family.name, cache / f"{family.name}.done"
    with (cache / f"{family.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            shutil.rmtree(root, ignore_errors=True)  # a build interrupted in an earlier process
            build_pair(family, root)
            done.touch()
    instruct_eos, base_eos = eos_lists(family)
    return BuiltPair(family, root / "instruct", root / "base", instruct_eos, base_eos)
