"""Text deltas for streamed responses, from the token ids the engine hands out each step.

``TextStream`` decodes incrementally (the prefix/read-offset scheme of text-generation-
inference: only a short window of recent tokens is decoded per step, and a delta is released
only once it no longer ends in half a UTF-8 character). When the request has stop strings it
also holds back the last ``len(longest stop) - 1`` characters, because they could be the start
of a stop string that the engine will cut off; so what was sent is always a prefix of the
final text. ``finish`` returns the rest of the engine's final text (the authority on stops).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

_PARTIAL = "\ufffd"  # what a decoder writes for an incomplete UTF-8 sequence


class TextStream:
    """The text of one streamed sample, released piece by piece."""

    def __init__(self, tokenizer: Any, stops: Sequence[str] = ()):
        self.tokenizer = tokenizer
        self.holdback = max((len(s) for s in stops), default=1) - 1
        self.tokens: list[int] = []
        self._prefix = 0  # tokens[_prefix:_read] decode to the text already accumulated
        self._read = 0
        self.text = ""  # decoded so far
        self.sent = 0  # characters of ``text`` already released

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def push(self, ids: Sequence[int]) -> str:
        """Add new token ids; returns the text that may be sent now (maybe empty)."""
        self.tokens.extend(ids)
        before = self._decode(self.tokens[self._prefix : self._read])
        after = self._decode(self.tokens[self._prefix :])
        if len(after) > len(before) and not after.endswith(_PARTIAL):
            self.text += after[len(before) :]
            self._prefix, self._read = self._read, len(self.tokens)
        ready = len(self.text) - self.holdback
        if ready <= self.sent:
            return ""
        delta = self.text[self.sent : ready]
        self.sent = ready
        return delta

    def finish(self, final_text: str) -> str:
        """The rest of ``final_text`` (the engine's answer) after what was sent.

        What was sent is a prefix of ``final_text`` for tokenizers whose decoding of a prefix
        is a prefix of the whole (the byte-level BPE and SentencePiece families); the tests
        check it on the shipped pair.
        """
        return final_text[self.sent :]
