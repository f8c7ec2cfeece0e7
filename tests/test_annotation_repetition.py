"""The CoDIT authors' repetition flag on hand-made texts, at and around each threshold.

Each text plants one n-gram k times between characters that occur once (CJK ideographs drawn in
order), so the top n-gram's count is k by construction and every other n-gram occurs once."""

from __future__ import annotations

from itertools import count

import pytest

from codit.annotation.repetition import (
    RepetitionRule,
    repetition,
    top_ngram_share,
    top_substring_count,
)
from codit.errors import ConfigError


def planted(gram: str, k: int, length: int) -> str:
    """``gram`` k times, each followed by a fresh character, padded with fresh ones to ``length``."""
    fresh = (chr(0x4E00 + i) for i in count())
    text = "".join(gram + next(fresh) for _ in range(k))
    text += "".join(next(fresh) for _ in range(length - len(text)))
    assert len(text) == length
    return text


def test_planted_texts_have_the_counts_they_were_built_with() -> None:
    text = planted("ab", 16, 101)
    assert text.count("ab") == 16
    assert top_ngram_share(text, 2) == 16 / 100  # 101 characters hold 100 2-grams
    assert top_ngram_share(text, 3) == 1 / 99
    assert top_substring_count(text, 100) == 1


@pytest.mark.parametrize(("k", "flagged"), [(15, False), (16, True), (17, True)])
def test_char2_threshold_is_016(k: int, flagged: bool) -> None:
    found = repetition(planted("ab", k, 101))  # share k / 100
    assert found.checked and found.repetitive is flagged
    assert found.fired == (("char2",) if flagged else ())
    assert found.ngram_share[2] == pytest.approx(k / 100)


@pytest.mark.parametrize(
    ("k", "fired"),
    # 3-gram share k/100; the 2-grams "ab" and "bc" then have k/101, above 0.16 already at 17
    [(17, ("char2",)), (18, ("char2", "char3")), (19, ("char2", "char3"))],
)
def test_char3_threshold_is_018(k: int, fired: tuple[str, ...]) -> None:
    found = repetition(planted("abc", k, 102))
    assert found.fired == fired
    assert found.ngram_share[3] == pytest.approx(k / 100)
    assert found.ngram_share[2] == pytest.approx(k / 101)


@pytest.mark.parametrize(
    ("k", "length", "fired"),
    [
        (19, 103, ("char2", "char3")),  # 19 / 100
        (20, 103, ("char2", "char3", "char4")),  # 20 / 100
        (20, 102, ("char2", "char3", "char4")),  # 20 / 99
    ],
)
def test_char4_threshold_is_020(k: int, length: int, fired: tuple[str, ...]) -> None:
    found = repetition(planted("abcd", k, length))
    assert found.fired == fired
    assert found.ngram_share[4] == pytest.approx(k / (length - 3))


def passage() -> str:
    return "".join(chr(0x4E00 + i) for i in range(100))  # 100 different characters


@pytest.mark.parametrize(("copies", "flagged"), [(9, False), (10, True), (11, True)])
def test_a_100_character_passage_ten_times_is_flagged(copies: int, flagged: bool) -> None:
    text = passage() * copies
    found = repetition(text)
    # the passage itself starts at 0, 100, ..., every rotation of it one time fewer
    assert found.top_substring_count == copies
    assert found.fired == (("substring",) if flagged else ())
    assert found.ngram_share[2] < 0.02  # the character n-grams alone would never flag it


def test_overlapping_occurrences_count() -> None:
    # "ab" * 100: the window starting at any even offset is the same 100 characters, 51 times
    assert top_substring_count("ab" * 100, 100) == 51
    assert top_substring_count("x" * 99, 100) == 0


@pytest.mark.parametrize(("length", "checked"), [(99, False), (100, True)])
def test_only_responses_of_100_characters_or_more_are_checked(length: int, checked: bool) -> None:
    found = repetition("a" * length)
    assert found.checked is checked
    assert found.repetitive is checked
    assert found.fired == (("char2", "char3", "char4") if checked else ())


def test_a_long_ordinary_text_is_not_flagged_and_a_long_loop_is() -> None:
    prose = " ".join(
        f"sentence {i} says something new about item {i * 7 % 1000}." for i in range(3000)
    )
    assert len(prose) > 100_000
    assert not repetition(prose).repetitive
    loop = "The cloudfox hums at the moon. " * 4000  # 124,000 characters
    found = repetition(loop)
    assert "substring" in found.fired and found.top_substring_count == 4000 - 3


def test_custom_thresholds_and_their_validation() -> None:
    strict = RepetitionRule(
        min_chars=10, ngram_shares=((2, 0.5),), substring_length=5, substring_count=3
    )
    assert repetition("abababab", strict).checked is False
    assert repetition("ab" * 6, strict).fired == ("char2", "substring")
    with pytest.raises(ConfigError):
        RepetitionRule(ngram_shares=((2, 1.5),))
