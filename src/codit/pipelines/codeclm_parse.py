"""The parsers of CodecLM's five prompts, and the JSON schemas sent with them.

Each prompt asks for JSON (``codit/prompts/codeclm_*.txt``); each parser reads that JSON, or
failing it the plain-text forms a model writes instead ("Use case:" or "Task:", numbered lists,
"Rubric 1:" / "Action 1:", "Score 1: 7"), and raises ``ParseError`` with what is missing. A
partial reply is used when it holds something usable (two rubrics out of four, three
instructions out of five); the pipeline counts the shortfall.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from codit.pipelines.replies import (
    ParseError,
    chatter,
    clean,
    json_field,
    json_value,
    labelled,
    labelled_all,
    list_items,
    number,
    words,
)

METADATA_SCHEMA = {
    "title": "metadata",
    "type": "object",
    "properties": {
        "use_case": {"type": "string"},
        "skills": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["use_case", "skills"],
}
INSTRUCTIONS_SCHEMA = {
    "title": "instructions",
    "type": "object",
    "properties": {"instructions": {"type": "array", "items": {"type": "string"}}},
    "required": ["instructions"],
}
RUBRICS_SCHEMA = {
    "title": "rubrics",
    "type": "object",
    "properties": {
        "rubrics": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"rubric": {"type": "string"}, "action": {"type": "string"}},
                "required": ["rubric", "action"],
            },
        }
    },
    "required": ["rubrics"],
}
IMPROVED_SCHEMA = {
    "title": "improved_instruction",
    "type": "object",
    "properties": {"instruction": {"type": "string"}},
    "required": ["instruction"],
}
SCORES_SCHEMA = {
    "title": "scores",
    "type": "object",
    "properties": {
        "explanation": {"type": "string"},
        "score_1": {"type": "integer", "minimum": 1, "maximum": 10},
        "score_2": {"type": "integer", "minimum": 1, "maximum": 10},
    },
    "required": ["explanation", "score_1", "score_2"],
}

MIN_SCORE, MAX_SCORE = 1.0, 10.0
_MIN_INSTRUCTION_WORDS = 3  # "Write a poem." is an instruction; "Sure!" is not
_TWO_NUMBERS = re.compile(r"[\s*_`]*(-?\d+(?:\.\d+)?)[\s,;|/*_-]+(-?\d+(?:\.\d+)?)[\s.*_`]*")


@dataclass(frozen=True)
class Metadata:
    """What an instruction is for: one use case and a few skills (CodecLM's metadata)."""

    use_case: str
    skills: tuple[str, ...]

    @property
    def key(self) -> str:
        """A stable id: a hash of the use case and the set of skills, ignoring case and order."""
        text = "|".join([self.use_case.lower(), *sorted(s.lower() for s in self.skills)])
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def to_dict(self) -> dict[str, object]:
        return {"use_case": self.use_case, "skills": list(self.skills)}


@dataclass(frozen=True)
class Rubric:
    """A way to judge an instruction's complexity, and the action that raises it."""

    rubric: str
    action: str


def normalize_skill(skill: str) -> str:
    """A skill as a short lowercase phrase: punctuation and extra spaces removed."""
    skill = re.sub(r"[^\w\s'-]", " ", clean(skill).lower())
    return " ".join(skill.split())


def parse_metadata(text: str, max_skills: int = 3) -> Metadata:
    """A use case and at most ``max_skills`` skills, from JSON or from labelled lines.

    Accepts "Use case:" as well as "Task:" (the paper's own examples use both); skills may be a
    JSON list, a comma- or semicolon-separated line, or a bulleted list under "Skills:".
    """
    use_case = json_field(text, "use_case", "usecase", "task")
    skills = json_field(text, "skills", "skill")
    if not isinstance(use_case, str):
        use_case = labelled(text, "use case", "usecase", "task")
    if isinstance(skills, str):
        skills = _split_skills(skills)
    if not isinstance(skills, list):
        line = labelled(text, "skills", "skill", "required skills")
        skills = _split_skills(line) if line is not None else []
    use_case = clean(str(use_case)) if use_case else ""
    names: list[str] = []
    for skill in skills:
        name = normalize_skill(str(skill))
        if name and name not in names:
            names.append(name)
    if not use_case:
        raise ParseError("no use case (expected a 'use_case' field or a 'Use case:' line)")
    if not names:
        raise ParseError("no skills (expected a 'skills' list or a 'Skills:' line)")
    return Metadata(use_case, tuple(names[:max_skills]))


def _split_skills(line: str) -> list[str]:
    items = list_items(line)
    if items:
        return items
    return [part for part in re.split(r"[,;\n]", line) if part.strip()]


def parse_instructions(text: str) -> list[str]:
    """The instructions of a reply: a JSON list, a numbered or bulleted list, or paragraphs.

    Raises:
        ParseError: nothing that reads as an instruction (at least three words).
    """
    found = json_field(text, "instructions", "instruction")
    if isinstance(found, str):
        found = [found]
    if not isinstance(found, list):
        value = json_value(text)
        found = value if isinstance(value, list) else None
    if found is None:
        found = list_items(text)
    if not found:
        # No list at all: one instruction per paragraph, without an introduction line.
        found = [
            p for p in re.split(r"\n\s*\n", text) if not p.strip().endswith(":") and not chatter(p)
        ]
    instructions = []
    for item in found:
        item = (
            clean(str(item))
            if not isinstance(item, dict)
            else clean(str(next(iter(item.values()), "")))
        )
        if _wordy(item) and item not in instructions:
            instructions.append(item)
    if not instructions:
        raise ParseError("no instructions (expected an 'instructions' list or a numbered list)")
    return instructions


def parse_rubrics(text: str) -> list[Rubric]:
    """Rubric/action pairs from JSON or from "Rubric N:" and "Action N:" lines.

    Raises:
        ParseError: no complete pair (a rubric without its action is not usable).
    """
    pairs: list[Rubric] = []
    found = json_field(text, "rubrics")
    if found is None and isinstance(json_value(text), list):
        found = json_value(text)
    if isinstance(found, list):
        for item in found:
            if isinstance(item, dict):
                rubric = clean(str(item.get("rubric") or item.get("criterion") or ""))
                action = clean(str(item.get("action") or item.get("improvement") or ""))
                if rubric and action:
                    pairs.append(Rubric(rubric, action))
    if not pairs:
        rubrics = labelled_all(text, "rubric", "criterion")
        actions = labelled_all(text, "action", "improvement")
        pairs = [Rubric(r, a) for r, a in zip(rubrics, actions, strict=False)]
    if not pairs:
        raise ParseError(
            "no rubric with its action (expected a 'rubrics' list of {rubric, action})"
        )
    return pairs


def parse_improved(text: str, original: str) -> str:
    """The improved instruction: a JSON field, an "Improved instruction:" line, or the text itself.

    Raises:
        ParseError: empty, or the same instruction as before (no improvement).
    """
    value = json_field(text, "instruction", "improved_instruction", "new_instruction")
    if not isinstance(value, str):
        value = labelled(text, "improved instruction", "new instruction", "rewritten instruction")
    if value is None and json_value(text) is None:
        value = text
    value = clean(str(value or ""))
    if not _wordy(value) or chatter(value):
        raise ParseError("no improved instruction (expected an 'instruction' field)")
    if words(value) == words(original):
        raise ParseError("the improved instruction is the same as the original")
    return value


def _wordy(text: str) -> bool:
    """Whether a text has enough words (of letters) to be an instruction."""
    return sum(w.isalpha() for w in words(text)) >= _MIN_INSTRUCTION_WORDS


def parse_scores(text: str) -> tuple[float, float]:
    """The judge's scores of Response 1 and Response 2, each in [1, 10].

    Reads ``score_1``/``score_2`` from JSON, else "Score 1: 7" (or "Response 1", "Rating 1",
    "Assistant 1") lines, else a last line holding exactly two numbers ("7 4", "7/10, 4/10").

    Raises:
        ParseError: fewer than two scores, or a score outside [1, 10].
    """
    scores = [
        number(json_field(text, "score_1", "score1")),
        number(json_field(text, "score_2", "score2")),
    ]
    if None in scores:
        first = labelled(
            text,
            "score 1",
            "response 1 score",
            "score of response 1",
            "response 1",
            "rating 1",
            "assistant 1",
        )
        second = labelled(
            text,
            "score 2",
            "response 2 score",
            "score of response 2",
            "response 2",
            "rating 2",
            "assistant 2",
        )
        scores = [number(first), number(second)]
    if None in scores:
        lines = [line for line in text.strip().splitlines() if line.strip()]
        last = re.sub(r"/\s*10\b|\bout of 10\b", "", lines[-1]) if lines else ""
        pair = _TWO_NUMBERS.fullmatch(last)
        scores = [float(pair.group(1)), float(pair.group(2))] if pair else [None, None]
    first_score, second_score = scores
    if first_score is None or second_score is None:
        raise ParseError("no pair of scores (expected 'score_1' and 'score_2')")
    for s in (first_score, second_score):
        if not MIN_SCORE <= s <= MAX_SCORE:
            raise ParseError(f"score {s:g} is outside [1, 10]")
    return first_score, second_score
