"""The single-answer grading prompt and its score parser: what counts as a score, what does not."""

from __future__ import annotations

import pytest

from codit.annotation.grade import load_template, parse_score, render
from codit.errors import DataError
from codit.pipelines.replies import ParseError


@pytest.mark.parametrize(
    ("reply", "score"),
    [
        ("The answer is correct.\nStrengths: ...\nWeaknesses: none.\nScore: [[7]]", 7),
        ("Analysis...\n\n**Score:** [[9]]", 9),
        ("score: [[ 10 ]]", 10),
        ("Score: [[1]]", 1),
        ("Score: 8/10", 8),
        ("Score: 6 out of 10.", 6),
        ("Final score = 5", 5),
        ("4. Score: [[3]]", 3),
        ("Rating: [[4/10]]", 4),
        ("Score: [[2]]\nOn reflection the answer is better.\nScore: [[8]]", 8),  # the last line
        ("Score: [[6]]\n\nI hope this review helps.", 6),  # text after the score line
    ],
)
def test_scores_that_are_read(reply: str, score: int) -> None:
    assert parse_score(reply) == score


@pytest.mark.parametrize(
    "reply",
    [
        "",
        "A decent answer; I would give it a 7.",  # no score line
        "Score: [[7]] or [[8]]",  # two scores
        "Score: 7-8",
        "Score: 7 or 8",
        "Score: [[N]]",  # the template's placeholder echoed back
        "Score: [[6.5]]",  # not a whole number
        "Score: [[0]]",
        "Score: [[11]]",
        "Score: between 7 and 8\nnothing else",
    ],
)
def test_replies_that_are_not_guessed(reply: str) -> None:
    with pytest.raises(ParseError):
        parse_score(reply)


def test_the_template_asks_for_analysis_then_the_fixed_score_line() -> None:
    template = load_template()
    assert template.rstrip().endswith("Score: [[N]]")
    for step in ("Read the query", "strengths and its weaknesses", "1-2: very poor", "9-10"):
        assert step in template
    prompt = render(template, "Say {response}", "uses {instruction} braces")
    assert "Say {response}" in prompt and "uses {instruction} braces" in prompt
    with pytest.raises(ParseError):
        parse_score(template)


def test_a_template_file_must_hold_both_placeholders(tmp_path) -> None:
    path = tmp_path / "t.txt"
    path.write_text("Grade {response}", encoding="utf-8")
    with pytest.raises(DataError, match="instruction"):
        load_template(path)
    with pytest.raises(DataError, match="does not exist"):
        load_template(tmp_path / "missing.txt")
