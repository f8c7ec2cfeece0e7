"""Tiny random-weight models and a locally trained tokenizer, built inside the tests.

No hub access: the tokenizer is trained on a few sentences with ``tokenizers`` and the models
are built from small Llama configs. ``save_pair`` writes an instruct/base pair (same tokenizer,
different weights) as ordinary model directories, the way users keep theirs.
"""

from __future__ import annotations

from pathlib import Path

import torch

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}<|end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
SPECIALS = ["<|pad|>", "<|end|>", "<|system|>", "<|user|>", "<|assistant|>"]
CORPUS = [
    "the quick brown fox jumps over the lazy dog",
    "a small model answers every question about the river town",
    "write three bullet points about apples and pears",
    "all lowercase letters please, and no commas at all",
    "the base model knows facts; the instruct model follows instructions",
    "numbers 0 1 2 3 4 5 6 7 8 9 and punctuation . , ! ? : ; - ( )",
]


def make_tokenizer(vocab_size: int = 300):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(CORPUS * 4, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<|pad|>",
        eos_token="<|end|>",
        additional_special_tokens=SPECIALS[2:],
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def make_model(tokenizer, seed: int, vocab_rows: int | None = None, layers: int = 2, dim: int = 32):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab_rows or len(tokenizer),
        hidden_size=dim,
        intermediate_size=dim * 2,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(config)
    # Random init gives near-uniform logits; sharpen them so greedy choices are well separated.
    with torch.no_grad():
        model.lm_head.weight.mul_(8.0)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model.eval()


def save_pair(root: Path, vocab_rows_base: int | None = None) -> tuple[Path, Path]:
    """Write ``root/instruct`` and ``root/base`` model directories sharing one tokenizer."""
    tokenizer = make_tokenizer()
    paths = []
    for name, seed, rows in (("instruct", 1, None), ("base", 2, vocab_rows_base)):
        path = root / name
        make_model(tokenizer, seed, rows).save_pretrained(path)
        tokenizer.save_pretrained(path)
        paths.append(path)
    return paths[0], paths[1]
