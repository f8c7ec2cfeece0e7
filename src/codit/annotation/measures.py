"""The facts about a response that need no judge: its length, whether it hit the token cap, and
the repetition flag.

``codit annotate`` stores them in each record's ``annotation``; ``codit filter`` reads them from
there, or computes them here when a record has no annotation, so the length and repetition
filters work on any records file. Pure functions on record dicts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from codit.annotation.repetition import DEFAULT_RULE, RepetitionRule, repetition

TokenCounter = Callable[[str], int]


def meta_of(record: dict[str, Any]) -> dict[str, Any]:
    meta = record.get("meta")
    return meta if isinstance(meta, dict) else {}


def length_capped(record: dict[str, Any]) -> bool | None:
    """Whether generation stopped at ``max_new_tokens`` (``meta.finish_reason == "length"``);
    None when the record does not say."""
    reason = meta_of(record).get("finish_reason")
    return None if reason is None else reason == "length"


def token_length(
    record: dict[str, Any], text: str, count: TokenCounter | None, counter_name: str | None
) -> tuple[int | None, str | None]:
    """(tokens, where the number comes from) of a response: ``count`` when given (a tokenizer),
    else the record's ``meta.completion_tokens``, else (None, None)."""
    if count is not None:
        return count(text), f"tokenizer:{counter_name}"
    tokens = meta_of(record).get("completion_tokens")
    if isinstance(tokens, int) and not isinstance(tokens, bool):
        return tokens, "meta.completion_tokens"
    return None, None


def measures(
    record: dict[str, Any],
    text: str,
    count: TokenCounter | None = None,
    counter_name: str | None = None,
    rule: RepetitionRule = DEFAULT_RULE,
) -> dict[str, Any]:
    """Length, cap and repetition of one response, as ``annotation`` stores them."""
    tokens, source = token_length(record, text, count, counter_name)
    return {
        "chars": len(text),
        "tokens": tokens,
        "tokens_from": source,
        "length_capped": length_capped(record),
        "repetition": repetition(text, rule).to_dict(),
    }
