"""The tiny pair's tokenizer: byte-level BPE trained on the toy world, with a chat template.

Byte-level BPE (as in GPT-2, Llama 3 and Qwen) encodes any text, so no input is ever unknown.
The special tokens are the chat roles and one end token, ``<|end|>``, which ends a document in
the base model's corpus and a turn in the instruct model's conversations: both models stop on
it, and the base model has learnt where text ends, which keeps CoDIT's ratio p_post/p_base
meaningful for the stop token.

The chat template renders::

    <|system|>\\n{system}<|end|>\\n<|user|>\\n{question}<|end|>\\n<|assistant|>\\n{answer}<|end|>\\n

and ``add_generation_prompt`` appends ``<|assistant|>\\n``. The tokenizer adds no BOS token.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

END = "<|end|>"
PAD = "<|pad|>"
ROLES = ("system", "user", "assistant")
SPECIAL_TOKENS = (PAD, END, *(f"<|{role}|>" for role in ROLES))

# The {% generation %} block marks the answer and its <|end|> for TRL's assistant_only_loss;
# it renders nothing, so prompts and records are the same with or without it.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] not in ['system', 'user', 'assistant'] %}"
    "{{ raise_exception('roles must be system, user or assistant, not ' + message['role']) }}"
    "{% endif %}"
    "{% if message['role'] == 'assistant' %}"
    "{{ '<|assistant|>\\n' }}{% generation %}{{ message['content'] + '<|end|>' }}{% endgeneration %}{{ '\\n' }}"
    "{% else %}{{ '<|' + message['role'] + '|>\\n' + message['content'] + '<|end|>\\n' }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}"
)


def train_tokenizer(texts: Iterable[str], vocab_size: int = 2048, max_length: int = 512) -> Any:
    """Train a byte-level BPE tokenizer on ``texts`` and wrap it for transformers.

    Args:
        texts: the training text (the corpus and the conversations).
        vocab_size: size of the vocabulary, special tokens included.
        max_length: the models' context length, recorded as ``model_max_length``.

    Returns:
        A ``PreTrainedTokenizerFast`` with pad/eos tokens and the chat template set.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE(unk_token=None))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(texts, trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        eos_token=END,
        pad_token=PAD,
        additional_special_tokens=list(SPECIAL_TOKENS[2:]),
        model_max_length=max_length,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def encode_conversation(
    tokenizer: Any, messages: list[dict[str, str]]
) -> tuple[list[int], list[int]]:
    """Token ids of a conversation whose last turn is the assistant's, and its training labels.

    The prompt is encoded exactly as at generation time (the template with the generation
    prompt), and the answer is the assistant text followed by ``<|end|>``. Labels are -100 on
    the prompt, so the loss falls on the answer tokens and the stop token only.

    Returns:
        (input ids, labels), of equal length.
    """
    prompt = tokenizer.apply_chat_template(
        messages[:-1], tokenize=False, add_generation_prompt=True
    )
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer(messages[-1]["content"] + END, add_special_tokens=False)["input_ids"]
    return prompt_ids + answer_ids, [-100] * len(prompt_ids) + answer_ids
