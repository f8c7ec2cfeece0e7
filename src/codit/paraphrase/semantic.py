"""Semantic rewordings of instructions through a text backend.

The fourth perturbation level of CoIN (Yan et al., 2024, arXiv 2402.11138): the instruction
said in other words by an LLM, any OpenAI-compatible server or a local model
(``codit.backends``). The prompt asks for the same request with every constraint kept; what
comes back is cleaned of the preambles and quotes models like to add. Whether a rewording stays
close enough in meaning is decided afterwards by ``similarity``.
"""

from __future__ import annotations

import re

from codit.backends.base import GenerationParams, Message, TextBackend, TextResult

PROMPT = (
    "Reword the instruction below. Keep exactly what it asks for: every constraint, number, "
    "name, format requirement and quoted text must stay the same in meaning. Change the wording "
    "and the sentence structure. Reply with the reworded instruction only: no preamble, no "
    "quotes, no explanation.\n\nInstruction:\n{instruction}"
)

_PREAMBLE = re.compile(
    r"^\s*(?:sure[,!.]?\s*)?(?:here(?:'s| is)[^:\n]*:|reworded instruction:|instruction:)\s*", re.I
)
_QUOTES = ('""', "''", "“”", "``")


def rewording_prompt(instruction: str) -> list[Message]:
    """The conversation that asks a backend to reword ``instruction``."""
    return [{"role": "user", "content": PROMPT.format(instruction=instruction)}]


def clean(text: str) -> str:
    """The rewording without a leading "Here is ...:" line or wrapping quotes."""
    text = _PREAMBLE.sub("", text.strip(), count=1).strip()
    for pair in _QUOTES:
        if len(text) >= 2 and text[0] == pair[0] and text[-1] == pair[1]:
            text = text[1:-1].strip()
    return text


def reword(
    backend: TextBackend, instructions: list[str], params: GenerationParams
) -> list[tuple[str | None, TextResult]]:
    """Ask the backend for one rewording per instruction.

    Returns:
        Per instruction, (the cleaned rewording or None when the call failed or the answer is
        empty or unchanged, the raw result for the errors file).
    """
    results = backend.generate([rewording_prompt(i) for i in instructions], params)
    out: list[tuple[str | None, TextResult]] = []
    for instruction, result in zip(instructions, results, strict=True):
        text = None if result.error else clean(result.text)
        usable = text and text.strip().lower() != instruction.strip().lower()
        out.append((text if usable else None, result))
    return out
