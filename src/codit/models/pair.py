"""Whether an instruct model and a base model can be contrasted token by token.

CoDIT compares the two models' distributions over the same token ids, so the pair must share
the tokenizer's vocabulary exactly. Some families pad the embedding matrix to different sizes
in the base and the instruct checkpoints; that is harmless as long as only the real vocabulary
(``len(tokenizer)`` ids) is contrasted, which is the size this module returns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from codit.errors import ModelError
from codit.models.loading import LoadedModel, eos_ids, load_config, load_model, load_tokenizer


def _embedding_rows(config: Any) -> int | None:
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    return getattr(text, "vocab_size", None)


def real_vocab_size(tokenizer: Any, config: Any, name: str) -> int:
    """The number of ids to score: the tokenizer's vocabulary, which the model must cover.

    Ids past the model's output rows are tolerated when every one of them is a special token
    that text never encodes to (Gemma 3 1B: 262144 rows, the image soft token at id 262144);
    the model cannot emit them, so only its rows are scored.
    """
    size = len(tokenizer)
    rows = _embedding_rows(config)
    if rows is not None and rows < size:
        special = set(getattr(tokenizer, "all_special_ids", []) or []) | {
            int(i) for i in (getattr(tokenizer, "added_tokens_decoder", None) or {})
        }
        if all(i in special for i in range(rows, size)):
            return rows
        raise ModelError(
            f"{name!r} has {rows} output rows but its tokenizer has {size} tokens; "
            "the model and its tokenizer do not match"
        )
    return size


def check_pair(
    instruct_name: str,
    base_name: str,
    instruct_tokenizer: Any,
    base_tokenizer: Any,
    instruct_config: Any,
    base_config: Any,
) -> int:
    """Check that two models can be contrasted and return how many logits to compare.

    Raises:
        ModelError: the vocabularies differ, or a model's output layer is smaller than the
            shared vocabulary.
    """
    vocab_i = instruct_tokenizer.get_vocab()
    vocab_b = base_tokenizer.get_vocab()
    if vocab_i != vocab_b:
        only_i = sorted(set(vocab_i.items()) - set(vocab_b.items()), key=lambda kv: kv[1])
        only_b = sorted(set(vocab_b.items()) - set(vocab_i.items()), key=lambda kv: kv[1])
        example = only_i[0] if only_i else only_b[0]
        raise ModelError(
            f"{instruct_name!r} and {base_name!r} do not share a vocabulary "
            f"({len(vocab_i)} vs {len(vocab_b)} tokens, {len(only_i) + len(only_b)} entries differ, "
            f"e.g. {example[0]!r} -> id {example[1]}); CoDIT needs the instruct model's own base model"
        )
    size = real_vocab_size(instruct_tokenizer, instruct_config, instruct_name)
    return min(size, real_vocab_size(base_tokenizer, base_config, base_name))


@dataclass
class ModelPair:
    """An instruct model, its base (None in direct mode), their shared tokenizer and facts."""

    tokenizer: Any
    instruct: LoadedModel
    base: LoadedModel | None
    vocab_size: int
    stop_ids: list[int]

    def info(self) -> dict[str, Any]:
        return {
            "instruct": self.instruct.info,
            "base": self.base.info if self.base else None,
            "vocab_size": self.vocab_size,
            "stop_ids": self.stop_ids,
        }


def load_pair_tokenizer(
    instruct: str, base: str | None, trust_remote_code: bool = False
) -> tuple[Any, int]:
    """Check a pair from its tokenizers and configs alone, before any weights load.

    Returns:
        The instruct model's tokenizer and the number of ids to score (see ``check_pair``).
    """
    tokenizer = load_tokenizer(instruct, trust_remote_code)
    config = load_config(instruct, trust_remote_code)
    if base is None:
        return tokenizer, real_vocab_size(tokenizer, config, instruct)
    base_tokenizer = load_tokenizer(base, trust_remote_code)
    base_config = load_config(base, trust_remote_code)
    return tokenizer, check_pair(instruct, base, tokenizer, base_tokenizer, config, base_config)


def load_pair(
    instruct: str,
    base: str | None,
    device: str = "auto",
    base_device: str | None = None,
    dtype: str = "auto",
    trust_remote_code: bool = False,
    device_map: str | None = None,
) -> ModelPair:
    """Load an instruct model and (when given) its base, checking the pair before any weights.

    Args:
        instruct: the post-trained model (built-in name, directory or hub id).
        base: its base model, or None for direct generation.
        device: device of the instruct model (and of the base unless ``base_device``).
        base_device: put the base model on another device, e.g. ``cuda:1``.
        dtype: ``auto`` (bf16 on CUDA, fp32 on CPU) or an explicit dtype name.
        trust_remote_code: allow code shipped with the models.
        device_map: ``auto`` spreads each model over every visible GPU (for models too big
            for one); None keeps each whole on its device.
    """
    tokenizer, vocab = load_pair_tokenizer(instruct, base, trust_remote_code)
    main = load_model(instruct, device, dtype, trust_remote_code, device_map)
    other = None
    if base is not None:
        other = load_model(base, base_device or main.device, dtype, trust_remote_code, device_map)
    return ModelPair(tokenizer, main, other, vocab, eos_ids(instruct, tokenizer, main.model))
