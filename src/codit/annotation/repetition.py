"""The repetition flag of the CoDIT authors' annotation: degenerate, looping responses.

Contrastive decoding is known to fall into loops when the contrast is strong, so the CoDIT
authors (Ichinose et al. 2026, arXiv:2604.13538; their public code) flag every response of at
least 100 characters when

* the most frequent character 2-gram, 3-gram or 4-gram makes up at least 0.16, 0.18 or 0.20 of
  all the character n-grams of that size (n-grams overlap: a text of L characters has L - n + 1
  of them), or
* some 100-character substring occurs 10 times or more (occurrences may overlap: every start
  position counts).

Each rule that fires is reported by name ("char2", "char3", "char4", "substring"). Read as
stated, the 3- and 4-gram rules never fire alone: every occurrence of the top 3-gram holds an
occurrence of a 2-gram, so on 100 characters or more the 2-gram share is at least 98/99 of the
3-gram share (0.178 > 0.16 at the threshold), and likewise for 4-grams; they are kept so that a
report says which rules a text breaks.

Pure functions on strings; the cost is linear in the text's length (one pass per n-gram size,
one hashed slice per start position for the substring count).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from codit.settings import check, setting


@dataclass(frozen=True)
class RepetitionRule:
    """The thresholds of the flag (defaults: the CoDIT authors')."""

    min_chars: int = setting(100, "shorter responses are never flagged", ge=1)
    ngram_shares: tuple[tuple[int, float], ...] = setting(
        ((2, 0.16), (3, 0.18), (4, 0.20)),
        "(n, share): flagged when the top character n-gram has this share",
    )
    substring_length: int = setting(100, "length of a repeated passage", ge=1)
    substring_count: int = setting(10, "flagged when one passage occurs this many times", ge=2)

    def __post_init__(self) -> None:
        check(
            self,
            [
                f"an n-gram rule needs n >= 1 and a share in (0, 1], not {n, share}"
                for n, share in self.ngram_shares
                if n < 1 or not 0 < share <= 1
            ],
        )


DEFAULT_RULE = RepetitionRule()


@dataclass(frozen=True)
class Repetition:
    """What the rule found in one text.

    Attributes:
        repetitive: whether any rule fired.
        fired: the rules that fired, in order: "char2", "char3", "char4", "substring".
        checked: whether the text was long enough to be checked at all.
        ngram_share: n -> the share of the most frequent character n-gram (checked texts only).
        top_substring_count: occurrences of the most frequent passage (checked texts only).
    """

    repetitive: bool
    fired: tuple[str, ...]
    checked: bool
    ngram_share: dict[int, float]
    top_substring_count: int

    def to_dict(self) -> dict[str, object]:
        return {
            "repetitive": self.repetitive,
            "fired": list(self.fired),
            "checked": self.checked,
            "ngram_share": {str(n): round(s, 4) for n, s in self.ngram_share.items()},
            "top_substring_count": self.top_substring_count,
        }


def top_ngram_share(text: str, n: int) -> float:
    """The share of the most frequent character n-gram among the text's L - n + 1 n-grams
    (0.0 when the text is shorter than n)."""
    total = len(text) - n + 1
    if total < 1:
        return 0.0
    counts = Counter(text[i : i + n] for i in range(total))
    return counts.most_common(1)[0][1] / total


def top_substring_count(text: str, length: int) -> int:
    """How often the most frequent substring of ``length`` characters occurs (overlaps count).

    One slice per start position, so the work is linear in the text (times ``length`` for the
    hashing), never quadratic.
    """
    total = len(text) - length + 1
    if total < 1:
        return 0
    counts = Counter(text[i : i + length] for i in range(total))
    return counts.most_common(1)[0][1]


def repetition(text: str, rule: RepetitionRule = DEFAULT_RULE) -> Repetition:
    """Apply the rule to one response."""
    if len(text) < rule.min_chars:
        return Repetition(False, (), False, {}, 0)
    shares = {n: top_ngram_share(text, n) for n, _ in rule.ngram_shares}
    fired = [f"char{n}" for n, limit in rule.ngram_shares if shares[n] >= limit]
    repeats = top_substring_count(text, rule.substring_length)
    if repeats >= rule.substring_count:
        fired.append("substring")
    return Repetition(bool(fired), tuple(fired), True, shares, repeats)
