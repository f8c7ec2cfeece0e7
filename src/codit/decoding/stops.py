"""Stop strings, watched incrementally while a response grows one token at a time.

A stop string that appears for the first time after a token was appended ends in that
token's text, and every token (a skipped special token aside) adds at least one byte, so a
stop string of ``b`` UTF-8 bytes lies inside the last ``b`` tokens. ``StopWatch.hit``
therefore decodes only a tail window of ``max b + MARGIN`` tokens each step, never the whole
text. The margin absorbs what
decoding a window can get wrong at its left edge: a first token that starts in the middle of a
multi-byte UTF-8 character (decoded as U+FFFD), a SentencePiece leading space dropped when the
window starts on a word, special tokens that decode to nothing. A character split across tokens
shows as U+FFFD at the right edge until its last byte arrives, so a stop string ending in it is
found on the step that completes it, not before.

This module knows nothing about rows or engines: one ``StopWatch`` serves every row (it keeps no
per-row state).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

MARGIN = 8
"""Tokens decoded beyond the longest stop string's byte length."""


class StopWatch:
    """Finds stop strings in a growing token list by decoding only its tail.

    Args:
        tokenizer: anything with ``decode(ids, skip_special_tokens=True) -> str``.
        stops: the stop strings (non-empty); none makes ``hit`` always False.
    """

    def __init__(self, tokenizer: Any, stops: Sequence[str]):
        if any(not s for s in stops):
            raise ValueError("stop strings must not be empty")
        self.tokenizer = tokenizer
        self.stops = tuple(stops)
        self.window = max((len(s.encode("utf-8")) for s in self.stops), default=0) + MARGIN

    def hit(self, tokens: list[int]) -> bool:
        """Whether the text of ``tokens`` contains a stop string; call after each append.

        Work is bounded by the window, whatever ``len(tokens)``.
        """
        if not self.stops or not tokens:
            return False
        tail = self.tokenizer.decode(tokens[-self.window :], skip_special_tokens=True)
        return any(s in tail for s in self.stops)

    def cut(self, text: str) -> str:
        """``text`` up to (without) the first stop string in it; unchanged when there is none."""
        found = [i for i in (text.find(s) for s in self.stops) if i >= 0]
        return text[: min(found)] if found else text
