"""Filters on the way in: which prompts of an input a run answers.

Applied in input order to each valid prompt, so a rerun with the same input and filters picks
the same prompts and resume stays exact:

* ``first_turn``: answer only the first user turn of a conversation (system turn kept), as the
  CoDIT paper does with LMSYS-Chat-1M;
* ``max_turns``: drop conversations with more user turns than this (counted before
  ``first_turn`` cuts them);
* ``min_chars`` / ``max_chars``: bounds on the prompt's length, in characters of its user turns;
* ``language``: keep prompts whose last user turn ``langdetect`` (IFEval's language detector,
  ``codit.evaluation.checks.detect_language``) reads as this ISO 639-1 code;
* ``dedup``: keep the first of prompts equal after normalisation (Unicode NFKC, case folded,
  runs of whitespace made one space), compared exactly: the normalised texts of the kept
  prompts are kept on disk (``codit.io.keyset``), not in memory.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from codit.io.keyset import KeySet
from codit.settings import check, setting

_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class PromptFilters:
    """Which prompts of the input to answer. Fields become ``--flags``."""

    first_turn: bool = setting(
        False,
        "answer only the first user turn of each conversation (as CoDIT does for LMSYS-Chat-1M)",
    )
    max_turns: int | None = setting(
        None, "skip conversations with more user turns than this", ge=1, optional=True
    )
    min_chars: int | None = setting(
        None, "skip prompts whose user turns have fewer characters", ge=0, optional=True
    )
    max_chars: int | None = setting(
        None, "skip prompts whose user turns have more characters", ge=0, optional=True
    )
    language: str | None = setting(
        None,
        "keep prompts in this language only (ISO 639-1 code as langdetect gives it, e.g. en)",
    )
    dedup: bool = setting(
        False, "skip prompts equal to an earlier one after normalising case, Unicode and spaces"
    )

    def __post_init__(self) -> None:
        problems = []
        if (
            self.min_chars is not None
            and self.max_chars is not None
            and self.min_chars > self.max_chars
        ):
            problems.append(f"--min-chars {self.min_chars} is above --max-chars {self.max_chars}")
        if self.language is not None and not re.fullmatch(r"[a-z]{2}(-[a-z]{2})?", self.language):
            problems.append(
                f"--language takes an ISO 639-1 code such as en or zh-cn, got {self.language!r}"
            )
        check(self, problems)

    @property
    def active(self) -> bool:
        """Whether any filter is set."""
        return self != PromptFilters()

    def to_manifest(self) -> dict[str, Any]:
        """The filters that are set (an empty dict when none is)."""
        default = PromptFilters()
        return {k: v for k, v in vars(self).items() if v != getattr(default, k)}


def first_user_turn(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    """The conversation up to and including its first user turn."""
    first = next(i for i, m in enumerate(messages) if m["role"] == "user")
    return messages[: first + 1]


def user_turns(messages: list[dict[str, str]]) -> int:
    return sum(m["role"] == "user" for m in messages)


def user_chars(messages: list[dict[str, str]]) -> int:
    return sum(len(m["content"]) for m in messages if m["role"] == "user")


def normalize(messages: list[dict[str, str]]) -> str:
    """The text two prompts are compared on for dedup: NFKC, case folded, spaces collapsed."""
    text = "\n".join(f"{m['role']}: {m['content']}" for m in messages)
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


class PromptFilter:
    """Applies ``PromptFilters`` to one conversation at a time, in input order.

    ``keep(messages)`` returns the conversation to answer (cut to its first turn with
    ``first_turn``) or None, counting why each dropped prompt was dropped in ``dropped``.
    """

    def __init__(self, filters: PromptFilters):
        self.filters = filters
        self.dropped: dict[str, int] = {}
        self._seen = KeySet() if filters.dedup else None

    def _drop(self, reason: str) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1

    def keep(self, messages: list[dict[str, str]]) -> list[dict[str, str]] | None:
        f = self.filters
        if f.max_turns is not None and user_turns(messages) > f.max_turns:
            self._drop("max_turns")
            return None
        if f.first_turn:
            messages = first_user_turn(messages)
        chars = user_chars(messages)
        if f.min_chars is not None and chars < f.min_chars:
            self._drop("min_chars")
            return None
        if f.max_chars is not None and chars > f.max_chars:
            self._drop("max_chars")
            return None
        if f.language is not None:
            from codit.evaluation.checks import detect_language

            last_user = next(m for m in reversed(messages) if m["role"] == "user")
            if detect_language(last_user["content"]) != f.language:
                self._drop("language")
                return None
        if self._seen is not None and not self._seen.add(normalize(messages)):
            self._drop("dedup")
            return None
        return messages
