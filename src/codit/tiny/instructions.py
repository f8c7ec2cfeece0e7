"""The verifiable instructions of the tiny world: IFEval's ids, arguments and wording.

Each family is one IFEval instruction type (Zhou et al. 2023, arXiv:2311.07911) with its exact
id and argument names, so ``codit.evaluation.checks.follows`` judges the tiny models exactly as
it judges IFEval responses. A family knows how to draw its arguments and how to say itself in a
prompt; how an answer obeys it is ``responses``' business. ``CONFLICTS`` lists the pairs that
cannot hold together in one answer (all capitals and all lowercase, JSON and a title outside it,
...), so every drawn set of instructions can be followed.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

END_PHRASES = (
    "Any other questions?",
    "Is there anything else I can help with?",
    "Let me know if you have additional questions.",
    "Hope this helps.",
)
SECTION_SPLITTERS = ("Section", "SECTION", "Part")
CONSTRAINED_OPTIONS = '("My answer is yes.", "My answer is no.", "My answer is maybe.")'


@dataclass(frozen=True)
class Family:
    """One IFEval instruction type: how to draw its arguments and how to ask for it."""

    id: str
    phrasings: tuple[str, ...]
    draw: Callable[[random.Random], dict[str, Any]] = field(default=lambda rng: {})


def _count(key: str, low: int, high: int) -> Callable[[random.Random], dict[str, Any]]:
    return lambda rng: {key: rng.randint(low, high)}


FAMILIES: dict[str, Family] = {
    f.id: f
    for f in (
        Family(
            "change_case:english_lowercase",
            (
                "Your entire response should be in English, and in all lowercase letters. No capital letters are allowed.",
                "Please answer in English using only lowercase letters.",
            ),
        ),
        Family(
            "change_case:english_capital",
            (
                "Your entire response should be in English, and in all capital letters.",
                "Please answer in English using only capital letters.",
            ),
        ),
        Family(
            "detectable_format:number_bullet_lists",
            (
                "Your answer must contain exactly {num_bullets} bullet points. Use the markdown bullet points such as:\n* This is point 1. \n* This is point 2",
                "Answer with exactly {num_bullets} markdown bullet points such as:\n* This is a point.",
            ),
            _count("num_bullets", 2, 5),
        ),
        Family(
            "length_constraints:number_words",
            (
                "Answer with {relation} {num_words} words.",
                "Your response should contain {relation} {num_words} words.",
            ),
            lambda rng: {"relation": rng.choice(("less than", "at least"))},
        ),
        Family(
            "length_constraints:number_sentences",
            (
                "Your response should contain {relation} {num_sentences} sentences.",
                "Answer in {relation} {num_sentences} sentences.",
            ),
            lambda rng: {"relation": rng.choice(("less than", "at least"))},
        ),
        Family(
            "startend:end_checker",
            (
                "Finish your response with this exact phrase {end_phrase}. No other words should follow this phrase.",
                "End your response with the exact phrase {end_phrase}",
            ),
            lambda rng: {"end_phrase": rng.choice(END_PHRASES)},
        ),
        Family(
            "keywords:existence",
            (
                "Include keywords {keywords} in the response.",
                "Make sure to use the words {keywords} in your answer.",
            ),
        ),  # the keywords come from the world; see responses.draw_keywords
        Family(
            "keywords:forbidden_words",
            (
                "Do not include keywords {forbidden_words} in the response.",
                "Do not use the words {forbidden_words} anywhere in your answer.",
            ),
        ),  # the words come from the answer; see responses
        Family(
            "detectable_format:json_format",
            (
                "Entire output should be wrapped in JSON format. You can use markdown ticks such as ```.",
                "Wrap your entire answer in JSON format.",
            ),
        ),
        Family(
            "detectable_format:title",
            (
                "Your answer must contain a title, wrapped in double angular brackets, such as <<poem of joy>>.",
                "Give your answer a title wrapped in double angular brackets, such as <<my title>>.",
            ),
        ),
        Family(
            "punctuation:no_comma",
            (
                "In your entire response, refrain from the use of any commas.",
                "Do not use any commas in your response.",
            ),
        ),
        Family(
            "detectable_content:postscript",
            (
                "At the end of your response, please explicitly add a postscript starting with {postscript_marker}",
                "Please add a postscript starting with {postscript_marker} at the end of your answer.",
            ),
            lambda rng: {"postscript_marker": rng.choice(("P.S.", "P.P.S"))},
        ),
        Family(
            "startend:quotation",
            (
                "Wrap your entire response with double quotation marks.",
                "Put your whole answer inside double quotation marks.",
            ),
        ),
        Family(
            "detectable_format:number_highlighted_sections",
            (
                "Highlight at least {num_highlights} sections in your answer with markdown, i.e. *highlighted section*.",
                "Highlight at least {num_highlights} parts of your answer with markdown, such as *highlighted part*.",
            ),
            _count("num_highlights", 1, 3),
        ),
        Family(
            "length_constraints:number_paragraphs",
            (
                "There should be {num_paragraphs} paragraphs. Paragraphs are separated with the markdown divider: ***",
                "Write exactly {num_paragraphs} paragraphs, separated from each other by the markdown divider ***",
            ),
            _count("num_paragraphs", 2, 3),
        ),
        Family(
            "detectable_format:multiple_sections",
            (
                "Your response must have {num_sections} sections. Mark the beginning of each section with {section_spliter} X, such as:\n{section_spliter} 1\n[content of section 1]\n{section_spliter} 2\n[content of section 2]",
                "Split your answer into {num_sections} sections, each starting with {section_spliter} X.",
            ),
            lambda rng: {
                "section_spliter": rng.choice(SECTION_SPLITTERS),
                "num_sections": rng.randint(2, 3),
            },
        ),
        Family(
            "detectable_format:constrained_response",
            (
                f"Answer with one of the following options: {CONSTRAINED_OPTIONS}",
                f"Choose one of these answers: {CONSTRAINED_OPTIONS}",
            ),
        ),  # only for yes/no questions
        Family(
            "combination:two_responses",
            (
                "Give two different responses. Responses and only responses should be separated by 6 asterisk symbols: ******.",
            ),
        ),
        Family(
            "combination:repeat_prompt",
            (
                "First repeat the request word for word without change, then give your answer (1. do not say any words or characters before repeating the request; 2. the request you need to repeat does not include this sentence)",
            ),
        ),  # prompt_to_repeat is the request before this sentence
    )
}

# Families that shape the body of the answer; an answer has at most one.
STRUCTURES = frozenset(
    {
        "detectable_format:number_bullet_lists",
        "length_constraints:number_paragraphs",
        "detectable_format:multiple_sections",
        "detectable_format:number_highlighted_sections",
        "combination:two_responses",
    }
)
_CASE = ("change_case:english_lowercase", "change_case:english_capital")
_WRAPS_WHOLE = ("detectable_format:json_format", "startend:quotation")


def _pairs(
    group_a: tuple[str, ...] | frozenset[str], group_b: tuple[str, ...] | frozenset[str]
) -> set[frozenset[str]]:
    return {frozenset((a, b)) for a in group_a for b in group_b if a != b}


CONFLICTS: set[frozenset[str]] = (
    _pairs(_CASE, _CASE)
    | _pairs(STRUCTURES, STRUCTURES)
    | _pairs(_WRAPS_WHOLE, _WRAPS_WHOLE)
    | _pairs(
        ("detectable_format:json_format",),
        STRUCTURES
        | {
            "detectable_format:title",
            "startend:end_checker",
            "detectable_content:postscript",
            "combination:repeat_prompt",
            "length_constraints:number_sentences",
            "detectable_format:constrained_response",
        },
    )
    | _pairs(
        _CASE, ("detectable_format:multiple_sections", "detectable_format:constrained_response")
    )
    | _pairs(("startend:end_checker",), ("detectable_content:postscript",))
    | _pairs(("startend:quotation",), ("detectable_format:number_bullet_lists",))
    # a repeated request brings its own commas, bullets, dividers and forbidden words
    | _pairs(
        ("combination:repeat_prompt",),
        (
            "punctuation:no_comma",
            "keywords:forbidden_words",
            "detectable_format:number_bullet_lists",
            "length_constraints:number_paragraphs",
        ),
    )
    # the repeated request cannot quote a count that depends on the answer that repeats it
    | _pairs(
        ("combination:repeat_prompt",),
        (
            "startend:quotation",
            "combination:two_responses",
            "length_constraints:number_words",
            "length_constraints:number_sentences",
        ),
    )
    | _pairs(("length_constraints:number_words",), ("length_constraints:number_sentences",))
)


def compatible(chosen: list[str], candidate: str) -> bool:
    """Whether ``candidate`` can join the already ``chosen`` instruction ids."""
    return candidate not in chosen and all(
        frozenset((c, candidate)) not in CONFLICTS for c in chosen
    )


def phrase(instruction_id: str, kwargs: dict[str, Any], variant: int) -> str:
    """The sentence that asks for the instruction, in wording ``variant`` (wrapped around)."""
    phrasings = FAMILIES[instruction_id].phrasings
    shown = {k: " and ".join(v) if isinstance(v, list) else v for k, v in kwargs.items()}
    return phrasings[variant % len(phrasings)].format(**shown)
