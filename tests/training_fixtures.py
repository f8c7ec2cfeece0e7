"""Helpers of the training and paraphrase tests: tiny model directories and record files.

Models come from ``tiny_models`` (random weights, a tokenizer trained in the test). Two chat
templates are used: the one of ``tiny_models`` (no ``{% generation %}`` markers, so SFT goes
through TRL's prompt/completion path) and ``MARKED_TEMPLATE`` (the same format with markers, so
SFT uses TRL's assistant-only loss).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tiny_models import make_model, make_tokenizer

MARKED_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n"
    "{% if m['role'] == 'assistant' %}{% generation %}{{ m['content'] }}<|end|>{% endgeneration %}\n"
    "{% else %}{{ m['content'] }}<|end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
QUESTIONS = [
    "write three bullet points about apples",
    "all lowercase letters please",
    "a small model answers every question",
    "the quick brown fox",
]
ANSWERS = ["the lazy dog", "numbers 0 1 2 3", "apples and pears", "no commas at all"]


def save_model(path: Path, chat_template: str | None = None, seed: int = 0) -> Path:
    """A tiny random Llama and its tokenizer saved as a model directory."""
    tokenizer = make_tokenizer()
    if chat_template is not None:
        tokenizer.chat_template = chat_template
    make_model(tokenizer, seed).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def sft_records(n: int = 8) -> list[dict[str, Any]]:
    """codit's SFT records, as ``codit generate`` writes them."""
    return [
        {
            "id": f"r{i}",
            "messages": [
                {"role": "user", "content": QUESTIONS[i % 4]},
                {"role": "assistant", "content": ANSWERS[i % 4]},
            ],
            "meta": {"mode": "codit", "finish_reason": "stop", "completion_tokens": 4},
        }
        for i in range(n)
    ]


def coin_records(n: int = 8) -> list[dict[str, Any]]:
    """CoIN pairs as ``codit paraphrase`` writes them; pairs of records share a group."""
    return [
        {
            **r,
            "paraphrase": r["messages"][0]["content"].replace("a", "e"),
            "meta": {"level": "char", "group": f"g{i // 2}"},
        }
        for i, r in enumerate(sft_records(n))
    ]
