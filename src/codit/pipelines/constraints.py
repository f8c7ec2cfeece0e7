"""Verifiable constraints an ECD evolution step can add: IFEval types with exact arguments.

When an evolution step is to add a verifiable constraint, code (not the LLM) chooses its IFEval
type and arguments, and prefers one that the previous stage's response breaks: that response is
the rejected answer of the pair, so by construction it misses the new requirement. The LLM then
rewrites the instruction to ask for it (``states`` checks that the rewrite names the exact
values), and ``Constraint.holds`` judges any response with IFEval's own check
(``codit.evaluation.checks.follows``).

``KINDS`` maps each usable IFEval id to the function that draws its arguments and phrases it;
``GROUPS`` and ``CONFLICTS`` keep one instruction from asking for incompatible things (all
lowercase and a "P.S." at the end; two length limits). Types that fit no general instruction
(a fixed yes/no answer, two responses, repeating the prompt, another language, JSON output) are
left out. Pure functions of a seeded ``random.Random``; no model is called here.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from codit.evaluation.checks import follows
from codit.evaluation.text import count_sentences, count_words

_NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_STOP_WORDS = """
    a about above after again all also an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had has
    have having he her here hers him his how i if in into is it its itself just me more most my
    no nor not now of off on once only or other our ours out over own same she should so some
    such than that the their theirs them then there these they this those through to too under
    until up very was we were what when where which while who whom why will with would you your
    yours please write give make tell describe explain
"""
_STOP = frozenset(_STOP_WORDS.split())
_END_PHRASES = (
    "Is there anything else I can help with?",
    "Let me know if you have additional questions.",
    "Any other questions?",
    "I hope this helps.",
)
_FALLBACK_KEYWORDS = ("example", "summary", "important", "because", "finally", "overall")


@dataclass(frozen=True)
class Constraint:
    """One verifiable requirement: an IFEval id, its arguments, and how the prompt states it.

    Attributes:
        id: the IFEval instruction id, e.g. ``"punctuation:no_comma"``.
        kwargs: the arguments of its check.
        text: the requirement in words, as given to the evolver.
        marks: what a rewritten instruction must mention; each tuple lists alternatives.
    """

    id: str
    kwargs: dict[str, Any]
    text: str
    marks: tuple[tuple[str, ...], ...] = field(default=(), compare=False)

    def holds(self, response: str) -> bool:
        """Whether ``response`` meets the requirement (IFEval's strict check)."""
        return follows(self.id, response, self.kwargs)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kwargs": self.kwargs, "text": self.text}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Constraint:
        return cls(data["id"], dict(data["kwargs"]), data["text"])


@dataclass(frozen=True)
class Context:
    """What a draw may look at: the instruction being evolved and its current response."""

    instruction: str
    previous: str


def _as_word(n: int) -> tuple[str, ...]:
    return (str(n), _NUMBER_WORDS[n]) if n < len(_NUMBER_WORDS) else (str(n),)


def _content_words(text: str, min_length: int) -> list[str]:
    seen: dict[str, None] = {}
    for word in re.findall(r"[A-Za-z]+", text):
        lower = word.lower()
        if len(lower) >= min_length and lower not in _STOP:
            seen.setdefault(lower, None)
    return list(seen)


def _round_to(value: float, step: int) -> int:
    return max(step, int(round(value / step)) * step)


# --- draws: one per IFEval type -----------------------------------------------------------------


def _number_words(rng: random.Random, ctx: Context) -> Constraint:
    n = count_words(ctx.previous)
    if n >= 30 and rng.random() < 0.5:
        limit = _round_to(n * rng.uniform(0.4, 0.7), 10)
        return Constraint(
            "length_constraints:number_words",
            {"relation": "less than", "num_words": limit},
            f"Keep the whole response under {limit} words.",
            ((str(limit),),),
        )
    limit = _round_to(n * rng.uniform(1.5, 2.0) + 20, 10)
    return Constraint(
        "length_constraints:number_words",
        {"relation": "at least", "num_words": limit},
        f"The response must be at least {limit} words long.",
        ((str(limit),),),
    )


def _number_sentences(rng: random.Random, ctx: Context) -> Constraint:
    n = count_sentences(ctx.previous)
    if n >= 4 and rng.random() < 0.5:
        limit = max(2, n // 2)
        return Constraint(
            "length_constraints:number_sentences",
            {"relation": "less than", "num_sentences": limit},
            f"Use fewer than {limit} sentences.",
            (_as_word(limit),),
        )
    limit = n + rng.randint(2, 4)
    return Constraint(
        "length_constraints:number_sentences",
        {"relation": "at least", "num_sentences": limit},
        f"Write at least {limit} sentences.",
        (_as_word(limit),),
    )


def _number_paragraphs(rng: random.Random, ctx: Context) -> Constraint:
    k = rng.randint(2, 4)
    return Constraint(
        "length_constraints:number_paragraphs",
        {"num_paragraphs": k},
        f"Write exactly {k} paragraphs, separated from each other by the markdown divider ***.",
        (_as_word(k), ("***",)),
    )


def _keywords_existence(rng: random.Random, ctx: Context) -> Constraint | None:
    previous = ctx.previous.lower()
    candidates = [w for w in _content_words(ctx.instruction, 5) if w not in previous]
    candidates = candidates or [w for w in _FALLBACK_KEYWORDS if w not in previous]
    if not candidates:
        return None
    words = rng.sample(candidates, min(len(candidates), rng.randint(1, 2)))
    listed = " and ".join(f'"{w}"' for w in words)
    return Constraint(
        "keywords:existence",
        {"keywords": words},
        f"Include the word{'s' if len(words) > 1 else ''} {listed} in the response.",
        tuple((w,) for w in words),
    )


def _forbidden_words(rng: random.Random, ctx: Context) -> Constraint | None:
    asked = set(_content_words(ctx.instruction, 1))
    candidates = [w for w in _content_words(ctx.previous, 4) if w not in asked]
    if not candidates:
        return None
    words = rng.sample(candidates, min(len(candidates), rng.randint(1, 2)))
    listed = " or ".join(f'"{w}"' for w in words)
    return Constraint(
        "keywords:forbidden_words",
        {"forbidden_words": words},
        f"Do not use the word{'s' if len(words) > 1 else ''} {listed} anywhere in the response.",
        tuple((w,) for w in words),
    )


def _keyword_frequency(rng: random.Random, ctx: Context) -> Constraint | None:
    candidates = _content_words(ctx.instruction, 4)
    if not candidates:
        return None
    keyword, times = rng.choice(candidates), rng.randint(2, 4)
    return Constraint(
        "keywords:frequency",
        {"keyword": keyword, "frequency": times, "relation": "at least"},
        f'Use the word "{keyword}" at least {times} times.',
        ((keyword,), _as_word(times)),
    )


def _lowercase(rng: random.Random, ctx: Context) -> Constraint:
    return Constraint(
        "change_case:english_lowercase",
        {},
        "Write the entire response in English, in lowercase letters only; no capital letters are allowed.",
        (("lowercase", "lower case", "lower-case"),),
    )


def _capital(rng: random.Random, ctx: Context) -> Constraint:
    return Constraint(
        "change_case:english_capital",
        {},
        "Write the entire response in English and in capital letters only.",
        (("capital", "uppercase", "upper case", "upper-case", "all caps"),),
    )


def _capital_words(rng: random.Random, ctx: Context) -> Constraint:
    times = rng.randint(2, 5)
    return Constraint(
        "change_case:capital_word_frequency",
        {"capital_frequency": times, "capital_relation": "at least"},
        f"Write at least {times} words entirely in capital letters, for emphasis.",
        (_as_word(times), ("capital", "uppercase", "upper case", "all caps")),
    )


def _postscript(rng: random.Random, ctx: Context) -> Constraint:
    marker = rng.choice(["P.S.", "P.P.S"])
    return Constraint(
        "detectable_content:postscript",
        {"postscript_marker": marker},
        f"End the response with a postscript that starts with {marker}",
        ((marker,),),
    )


def _placeholders(rng: random.Random, ctx: Context) -> Constraint:
    k = rng.randint(1, 3)
    return Constraint(
        "detectable_content:number_placeholders",
        {"num_placeholders": k},
        f"Include at least {k} placeholder{'s' if k > 1 else ''} in square brackets, such as [name].",
        (_as_word(k), ("[", "square bracket")),
    )


def _bullets(rng: random.Random, ctx: Context) -> Constraint:
    k = rng.randint(2, 5)
    return Constraint(
        "detectable_format:number_bullet_lists",
        {"num_bullets": k},
        f"Format the answer as exactly {k} markdown bullet points, each line starting with '* '.",
        (_as_word(k), ("bullet",)),
    )


def _highlights(rng: random.Random, ctx: Context) -> Constraint:
    k = rng.randint(1, 3)
    return Constraint(
        "detectable_format:number_highlighted_sections",
        {"num_highlights": k},
        f"Highlight at least {k} section{'s' if k > 1 else ''} with markdown, for example *a highlighted section*.",
        (_as_word(k), ("highlight",)),
    )


def _title(rng: random.Random, ctx: Context) -> Constraint:
    return Constraint(
        "detectable_format:title",
        {},
        "Give the response a title wrapped in double angular brackets, such as <<a title>>.",
        (("<<",),),
    )


def _sections(rng: random.Random, ctx: Context) -> Constraint:
    splitter, k = rng.choice(["Section", "SECTION", "Part"]), rng.randint(2, 4)
    return Constraint(
        "detectable_format:multiple_sections",
        {"section_spliter": splitter, "num_sections": k},
        f"Divide the response into {k} sections and begin each with '{splitter} N', where N is its number.",
        ((splitter,), _as_word(k)),
    )


def _end_phrase(rng: random.Random, ctx: Context) -> Constraint:
    phrase = rng.choice(_END_PHRASES)
    return Constraint(
        "startend:end_checker",
        {"end_phrase": phrase},
        f'Finish the response with the exact phrase "{phrase}" and nothing after it.',
        ((phrase,),),
    )


def _quotation(rng: random.Random, ctx: Context) -> Constraint:
    return Constraint(
        "startend:quotation",
        {},
        "Wrap the entire response in double quotation marks.",
        (("quotation", "quote"),),
    )


def _no_comma(rng: random.Random, ctx: Context) -> Constraint:
    return Constraint(
        "punctuation:no_comma", {}, "Do not use any commas in the response.", (("comma",),)
    )


# IFEval id -> (its group, its draw). Constraints of one group exclude each other.
KINDS: dict[str, tuple[str, Callable[[random.Random, Context], Constraint | None]]] = {
    "length_constraints:number_words": ("length", _number_words),
    "length_constraints:number_sentences": ("length", _number_sentences),
    "length_constraints:number_paragraphs": ("layout", _number_paragraphs),
    "keywords:existence": ("keywords:existence", _keywords_existence),
    "keywords:forbidden_words": ("keywords:forbidden_words", _forbidden_words),
    "keywords:frequency": ("keywords:frequency", _keyword_frequency),
    "change_case:english_lowercase": ("case", _lowercase),
    "change_case:english_capital": ("case", _capital),
    "change_case:capital_word_frequency": ("case", _capital_words),
    "detectable_content:postscript": ("ending", _postscript),
    "detectable_content:number_placeholders": ("placeholders", _placeholders),
    "detectable_format:number_bullet_lists": ("bullets", _bullets),
    "detectable_format:number_highlighted_sections": ("highlights", _highlights),
    "detectable_format:title": ("title", _title),
    "detectable_format:multiple_sections": ("layout", _sections),
    "startend:end_checker": ("ending", _end_phrase),
    "startend:quotation": ("quotation", _quotation),
    "punctuation:no_comma": ("comma", _no_comma),
}

# Pairs across groups that no response can meet together (fixed capitals against one case).
_CASED = (
    "detectable_content:postscript",
    "detectable_format:multiple_sections",
    "startend:end_checker",
)
CONFLICTS = frozenset(
    frozenset((case, other))
    for case in ("change_case:english_lowercase", "change_case:english_capital")
    for other in _CASED
)


def compatible(kind: str, existing: list[Constraint]) -> bool:
    """Whether a constraint of type ``kind`` can join ``existing`` ones."""
    group = KINDS[kind][0]
    return all(
        KINDS.get(c.id, (c.id,))[0] != group and frozenset((kind, c.id)) not in CONFLICTS
        for c in existing
    )


def draw_constraint(
    rng: random.Random,
    instruction: str,
    previous: str,
    existing: list[Constraint],
    allowed: tuple[str, ...] = (),
) -> Constraint | None:
    """A new constraint that fits ``existing`` and that ``previous`` (the response so far) breaks.

    Types (those in ``allowed``, or all of ``KINDS``) are tried in a random order; None when no
    type yields such a constraint.
    """
    context = Context(instruction, previous)
    kinds = [k for k in (allowed or KINDS) if compatible(k, existing)]
    rng.shuffle(kinds)
    for kind in kinds:
        constraint = KINDS[kind][1](rng, context)
        if constraint is not None and not constraint.holds(previous):
            return constraint
    return None


def states(constraint: Constraint, instruction: str) -> bool:
    """Whether an instruction names the constraint's exact values (numbers, words, markers)."""
    lower = instruction.lower()
    return all(
        any(alt.lower() in lower for alt in alternatives) for alternatives in constraint.marks
    )
