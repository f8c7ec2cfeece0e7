"""The parsers of ECD's prompts, their JSON schemas, and Evol-Instruct's elimination rules.

An evolution reply must hold a new instruction (JSON ``instruction`` or an "Instruction:" line or
the bare text) that differs from the one it evolved and does not copy words of the evolving
prompt; a check reply must hold one verdict, PASS or FAIL. ``response_problem`` applies
Evol-Instruct's rules for failed responses (empty, a short apology, only punctuation and stop
words). Each parser raises ``ParseError`` with what is wrong; nothing here calls a model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from codit.pipelines.replies import (
    ParseError,
    chatter,
    clean,
    json_field,
    json_value,
    labelled,
    words,
)

EVOLUTION_SCHEMA = {
    "title": "evolution",
    "type": "object",
    "properties": {"instruction": {"type": "string"}, "added_requirement": {"type": "string"}},
    "required": ["instruction"],
}
VERDICT_SCHEMA = {
    "title": "verdict",
    "type": "object",
    "properties": {
        "reason": {"type": "string"},
        "verdict": {"type": "string", "enum": ["PASS", "FAIL"]},
    },
    "required": ["reason", "verdict"],
}

# Words of the evolving prompt that must not leak into an evolved instruction (Evol-Instruct
# drops such evolutions).
_PROMPT_LEAKS = (
    "given instruction",
    "rewritten instruction",
    "#given prompt#",
    "#rewritten prompt#",
    "given prompt",
    "rewritten prompt",
    "added_requirement",
    "new requirement:",
)
_APOLOGIES = ("sorry", "i cannot", "i can't", "i am unable", "i'm unable", "as an ai")
_SHORT_APOLOGY_WORDS = 80
_STOP_WORDS = """
    a an and are as at be but by for from i if in is it me my of on or so that the this to was
    we were what with you your yes no ok okay
"""
_STOP = frozenset(_STOP_WORDS.split())
_VERDICT = re.compile(r"\b(PASS|FAIL)(?:ED|ES)?\b", re.IGNORECASE)


@dataclass(frozen=True)
class Evolution:
    """An evolved instruction and, for in-depth steps, the requirement it added (or "")."""

    instruction: str
    added: str = ""


def parse_evolution(text: str, previous: str) -> Evolution:
    """The evolved instruction of a reply.

    Raises:
        ParseError: no instruction; the same instruction as ``previous`` (no information gain);
            or one that copies words of the evolving prompt.
    """
    instruction = json_field(text, "instruction", "new_instruction", "rewritten_instruction")
    if not isinstance(instruction, str):
        instruction = labelled(text, "rewritten instruction", "new instruction", "instruction")
    if instruction is None and json_value(text) is None:
        instruction = text
    instruction = clean(str(instruction or ""))
    added = json_field(text, "added_requirement", "requirement")
    if not isinstance(added, str):
        added = labelled(text, "added requirement", "new requirement") or ""
    lower = instruction.lower()
    leak = next((w for w in _PROMPT_LEAKS if w in lower), None)
    if leak is not None:
        raise ParseError(f"the evolved instruction copies the evolving prompt ({leak!r})")
    if sum(w.isalpha() for w in words(instruction)) < 3 or chatter(instruction):
        raise ParseError("no evolved instruction (expected an 'instruction' field)")
    if words(instruction) == words(previous):
        raise ParseError("the evolved instruction is the same as before (no information gain)")
    return Evolution(instruction, clean(added))


def parse_verdict(text: str) -> bool:
    """True for PASS, False for FAIL: the JSON ``verdict``, else the last line that holds one.

    Raises:
        ParseError: no verdict, or a line that holds both.
    """
    verdict = json_field(text, "verdict", "result", "answer")
    if isinstance(verdict, bool):
        return verdict
    if isinstance(verdict, str) and _VERDICT.fullmatch(verdict.strip().strip(".")):
        return verdict.strip().upper().startswith("PASS")
    for line in reversed(text.splitlines()):
        found = {m.upper()[:4] for m in _VERDICT.findall(line)}
        if len(found) == 1:
            return found.pop() == "PASS"
        if found:
            raise ParseError("the verdict line holds both PASS and FAIL")
    raise ParseError("no verdict (expected 'PASS' or 'FAIL')")


def response_problem(text: str) -> str | None:
    """Why a response cannot be used (Evol-Instruct's elimination rules), or None."""
    if not text.strip():
        return "the response is empty"
    found = words(text)
    lower = text.lower()
    if len(found) < _SHORT_APOLOGY_WORDS and any(a in lower for a in _APOLOGIES):
        return "the response is a short apology"
    if all(w in _STOP for w in found):
        return "the response holds only punctuation and stop words"
    return None


def parse_response(text: str) -> str:
    """A usable response as it is; raises ``ParseError`` for one ``response_problem`` rejects."""
    problem = response_problem(text)
    if problem is not None:
        raise ParseError(problem)
    return text
