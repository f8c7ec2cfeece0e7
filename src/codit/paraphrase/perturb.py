"""Instruction perturbations made by code: character, word and sentence level.

The three code-made levels of the perturbations CoIN trains against (Yan et al., 2024,
arXiv 2402.11138), in the spirit of PromptBench's attacks: typos (character), synonym swaps,
dropped filler words and swapped neighbours (word), and appended distractor strings
(sentence). Each function is pure: the text and a seeded ``random.Random`` in, the perturbed
text out, always different from the input when the text allows it. The semantic level needs an
LLM and lives in ``semantic``.

Only alphabetic words are touched, so numbers, quoted keywords' digits and punctuation survive.
"""

from __future__ import annotations

import random
import re
import string
from collections.abc import Callable

# Neighbours on a QWERTY keyboard: the typos people actually make.
KEYBOARD = {
    "q": "wa",
    "w": "qase",
    "e": "wsdr",
    "r": "edft",
    "t": "rfgy",
    "y": "tghu",
    "u": "yhji",
    "i": "ujko",
    "o": "iklp",
    "p": "ol",
    "a": "qwsz",
    "s": "awedxz",
    "d": "serfcx",
    "f": "drtgvc",
    "g": "ftyhbv",
    "h": "gyujnb",
    "j": "huikmn",
    "k": "jiolm",
    "l": "kop",
    "z": "asx",
    "x": "zsdc",
    "c": "xdfv",
    "v": "cfgb",
    "b": "vghn",
    "n": "bhjm",
    "m": "njk",
}
# Swaps that keep an instruction's meaning (both directions are used).
SYNONYMS = {
    "write": "compose",
    "give": "provide",
    "short": "brief",
    "explain": "describe",
    "make": "create",
    "show": "display",
    "about": "regarding",
    "answer": "reply",
    "use": "employ",
    "tell": "inform",
    "begin": "start",
    "finish": "end",
    "big": "large",
    "small": "little",
    "quick": "fast",
    "choose": "pick",
    "help": "assist",
    "find": "locate",
    "response": "reply",
    "whole": "entire",
    "each": "every",
    "also": "additionally",
}
SYNONYMS |= {v: k for k, v in SYNONYMS.items() if v not in SYNONYMS}
FILLERS = {"please", "kindly", "just", "very", "really", "simply", "the", "a", "an"}
# PromptBench's StressTest strings; a random token (CheckList-style) is the other kind.
DISTRACTORS = ("and true is true", "and false is not true", "and true is true and true is true")

# A word: letters, optionally followed by punctuation ("sea," -> "sea" + ",").
_WORD = re.compile(r"([A-Za-z]+)([^\sA-Za-z0-9]*)")


def _tokens(text: str) -> list[str]:
    """Words and the whitespace between them, so that ``"".join`` gives the text back."""
    return [t for t in re.split(r"(\s+)", text) if t]


def _words(tokens: list[str], min_len: int = 1) -> dict[int, tuple[str, str]]:
    """Position -> (letters, trailing punctuation) of every word of ``min_len`` letters or more."""
    out = {}
    for i, token in enumerate(tokens):
        match = _WORD.fullmatch(token)
        if match and len(match[1]) >= min_len:
            out[i] = (match[1], match[2])
    return out


def _match_case(new: str, old: str) -> str:
    if old.isupper() and len(old) > 1:
        return new.upper()
    return new[:1].upper() + new[1:] if old[:1].isupper() else new


def typo(word: str, rng: random.Random) -> str:
    """One typo in a word of >= 3 letters: a neighbour key, a swap, a drop or a doubled letter."""
    i = rng.randrange(1, len(word) - 1)  # keep the first and last letters, as people do
    ch = word[i]
    op = rng.choice(("key", "swap", "drop", "double"))
    if op == "key" and ch.lower() in KEYBOARD:
        new = rng.choice(KEYBOARD[ch.lower()])
        return word[:i] + (new.upper() if ch.isupper() else new) + word[i + 1 :]
    if op == "swap" and word[i] != word[i + 1]:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if op == "drop":
        return word[:i] + word[i + 1 :]
    return word[:i] + ch + word[i:]


def char_level(text: str, rng: random.Random, rate: float = 0.15) -> str:
    """Typos in about ``rate`` of the words of three letters or more (at least one)."""
    tokens = _tokens(text)
    words = _words(tokens, min_len=3)
    if not words:
        return text
    count = max(1, round(len(words) * rate))
    for i in rng.sample(sorted(words), count):
        core, tail = words[i]
        tokens[i] = typo(core, rng) + tail
    return "".join(tokens)


def word_level(text: str, rng: random.Random, rate: float = 0.15) -> str:
    """About ``rate`` word edits (at least one): synonym swaps, dropped fillers, swapped neighbours.

    Synonyms and fillers come first, as they keep the meaning best; neighbouring words are
    swapped only when the text offers neither.
    """
    tokens = _tokens(text)
    words = _words(tokens)
    if not words:
        return text
    budget = max(1, round(len(words) * rate))
    swappable = [i for i, (core, _) in words.items() if core.lower() in SYNONYMS]
    droppable = [i for i, (core, tail) in words.items() if core.lower() in FILLERS and not tail]
    edits = rng.sample(swappable + droppable, min(budget, len(swappable) + len(droppable)))
    for i in edits:
        core, tail = words[i]
        if i in droppable:
            tokens[i] = ""
            if i + 1 < len(tokens) and tokens[i + 1].isspace():
                tokens[i + 1] = ""  # the space after a dropped word goes too
        else:
            tokens[i] = _match_case(SYNONYMS[core.lower()], core) + tail
    plain = [i for i, (_, tail) in words.items() if not tail]  # swap only words without punctuation
    if not edits and len(plain) >= 2:
        k = rng.randrange(len(plain) - 1)
        a, b = plain[k], plain[k + 1]
        tokens[a], tokens[b] = tokens[b], tokens[a]
    out = "".join(tokens)
    return out[:1].upper() + out[1:] if text[:1].isupper() else out


def sentence_level(text: str, rng: random.Random) -> str:
    """The text with a distractor appended: a tautology or a random token."""
    if rng.random() < 0.5:
        distractor = rng.choice(DISTRACTORS)
    else:
        distractor = "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(10))
    return f"{text.rstrip()} {distractor}"


PERTURBATIONS: dict[str, Callable[[str, random.Random], str]] = {
    "char": char_level,
    "word": word_level,
    "sentence": sentence_level,
}
