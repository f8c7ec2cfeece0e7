"""Single-answer grading: the judge prompt for one (query, answer) and reading its score.

The prompt (``codit/prompts/single_grade.txt``, placeholders ``{instruction}`` and
``{response}``) asks the judge, in codit's own words and in the spirit of WildBench's
single-answer checklist (Lin et al. 2024, arXiv:2406.04770) as the CoDIT authors use it, to read
the query, analyse the answer, list its strengths and weaknesses, and only then score it on a
described 1-10 scale, ending with the fixed line ``Score: [[N]]``.

``parse_score`` reads that line and nothing else: it never guesses. A reply with no score line,
or whose score line holds more than one number or a number outside 1-10, raises ``ParseError``
(the run then asks again, and records the answer as unscored if no reply can be read). Pure
functions; nothing here calls a model.
"""

from __future__ import annotations

import re
from pathlib import Path

from codit.pipelines import templates
from codit.pipelines.replies import ParseError

PLACEHOLDERS = ("instruction", "response")
SCALE = (1, 10)

# A line that states a score: "Score: [[7]]", "**Score:** 7/10", "Final score = 8", "Rating: 6".
_LABEL = re.compile(
    r"^(?:\d{1,2}[.)]\s*)?(?:final\s+|overall\s+)?(?:score|rating|grade)\s*[:=]\s*(?P<rest>.*)$",
    re.I,
)
_BRACKETED = re.compile(r"\[\[\s*([^\[\]]*?)\s*\]\]")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
_SCALE_SUFFIX = re.compile(r"\s*(?:/|out\s+of)\s*10\b\.?", re.I)


def load_template(path: str | Path | None = None) -> str:
    """The grading prompt: a file, or the built-in ``single_grade.txt``.

    Raises:
        DataError: the file is missing or lacks a placeholder.
    """
    return templates.user_template(path, "single_grade", PLACEHOLDERS, "grading")


def render(template: str, instruction: str, response: str) -> str:
    """Fill the template in one pass, so braces inside the query or the answer stay as they are."""
    return templates.render(template, instruction=instruction, response=response)


def _plain(line: str) -> str:
    """A line without markdown emphasis, heading marks or surrounding space."""
    return re.sub(r"[*_`#>]", "", line).strip()


def parse_score(text: str) -> int:
    """The 1-10 score of a judge's reply, read from its last score line.

    The score line is the last line that starts with ``Score:`` (or ``Rating:``, ``Grade:``,
    ``Final score:``; case, markdown emphasis and ``=`` instead of ``:`` are allowed). Its value
    is the bracketed ``[[N]]`` if the line has one, else the one number on the line; a trailing
    ``/10`` or ``out of 10`` is allowed. Earlier score lines are ignored (the prompt asks for the
    score at the end).

    Raises:
        ParseError: no score line, a score line with no number or several (``[[7]] or [[8]]``,
            ``7-8``), a number that is not whole, or one outside 1-10.
    """
    for line in reversed(text.splitlines()):
        match = _LABEL.match(_plain(line))
        if match:
            return _value(match.group("rest"), line.strip())
    raise ParseError("the reply has no 'Score: [[N]]' line")


def _value(rest: str, line: str) -> int:
    bracketed = _BRACKETED.findall(rest)
    if len(bracketed) > 1:
        raise ParseError(f"the score line {line!r} holds more than one score")
    value = bracketed[0] if bracketed else rest
    value = _SCALE_SUFFIX.sub("", value).strip().rstrip(".")
    numbers = _NUMBER.findall(value)
    if len(numbers) != 1:
        what = "no number" if not numbers else "more than one number"
        raise ParseError(f"the score line {line!r} holds {what}")
    if not numbers[0].isdigit():
        raise ParseError(f"the score {numbers[0]} in {line!r} is not a whole number")
    score = int(numbers[0])
    if not SCALE[0] <= score <= SCALE[1]:
        raise ParseError(f"the score {score} in {line!r} is outside {SCALE[0]}-{SCALE[1]}")
    return score
