"""Verifiable instruction checks: one pure function per IFEval instruction type.

IFEval (Zhou et al. 2023, "Instruction-Following Evaluation for Large Language Models",
arXiv:2311.07911) judges a response with code, not with a model: each of its 25 instruction
types has a check of the response text against the instruction's arguments. The functions here
give the same verdicts as the reference implementation (google-research/instruction_following_eval,
``instructions.py``), written anew so that they run offline:

* sentence counting and word tokenisation come from ``codit.evaluation.text`` instead of NLTK's
  downloaded Punkt data (see that module for how close the counts are);
* language detection uses ``langdetect`` (a port of Google's language-detection library, with its
  language profiles inside the package), which is the library IFEval itself uses, so the
  language verdicts are IFEval's; codit fixes its seed so that a verdict never changes between
  runs;
* keywords, custom postscript markers and section splitters are matched literally, where the
  reference treats them as regular expressions (identical for every argument in the IFEval data,
  which holds no regex metacharacters).

``CHECKS`` maps each instruction id to its function; ``follows`` applies one instruction in
IFEval's strict or loose mode. The checks are also the verifier of the ECD pipeline. This module
knows nothing about files or models.
"""

from __future__ import annotations

import collections
import functools
import inspect
import json
import re
import threading
from collections.abc import Callable
from typing import Any

from codit.errors import DataError
from codit.evaluation.text import count_sentences, count_words, word_tokens

RELATIONS = ("less than", "at least")
CONSTRAINED_OPTIONS = ("My answer is yes.", "My answer is no.", "My answer is maybe.")


def _compare(count: int, relation: str, threshold: int) -> bool:
    if relation == "less than":
        return count < threshold
    if relation == "at least":
        return count >= threshold
    raise DataError(f"relation must be one of {RELATIONS}, not {relation!r}")


# --- keywords -----------------------------------------------------------------------------------


def keywords_existence(response: str, *, keywords: list[str]) -> bool:
    """Every keyword occurs somewhere in the response, ignoring case (``keywords:existence``)."""
    return all(re.search(re.escape(k), response, flags=re.IGNORECASE) for k in keywords)


def keyword_frequency(response: str, *, keyword: str, frequency: int, relation: str) -> bool:
    """The keyword occurs ``relation`` ``frequency`` times, ignoring case (``keywords:frequency``).

    Occurrences are substrings, as in IFEval: "tree" is counted inside "street".
    """
    count = len(re.findall(re.escape(keyword.strip()), response, flags=re.IGNORECASE))
    return _compare(count, relation, frequency)


def forbidden_words(response: str, *, forbidden_words: list[str]) -> bool:
    """None of the words occurs as a whole word, ignoring case (``keywords:forbidden_words``)."""
    return not any(
        re.search(r"\b" + re.escape(w) + r"\b", response, flags=re.IGNORECASE)
        for w in forbidden_words
    )


def letter_frequency(response: str, *, letter: str, let_frequency: int, let_relation: str) -> bool:
    """The letter occurs ``let_relation`` ``let_frequency`` times, ignoring case."""
    letter = letter.strip().lower()
    if len(letter) != 1:
        raise DataError(f"letter must be a single character, not {letter!r}")
    return _compare(collections.Counter(response.lower())[letter], let_relation, let_frequency)


# --- language and case ----------------------------------------------------------------------------

_LANGDETECT_LOCK = threading.Lock()


@functools.lru_cache(maxsize=8192)
def detect_language(text: str) -> str | None:
    """The ISO 639-1 code ``langdetect`` gives ``text``, or None when it cannot tell.

    ``langdetect`` is what IFEval uses; its detector is randomised, so the seed is fixed here to
    make every verdict reproducible. Results are cached because loose mode asks about near-copies.
    """
    import langdetect
    from langdetect import DetectorFactory
    from langdetect.lang_detect_exception import LangDetectException

    with _LANGDETECT_LOCK:  # the first call loads the profiles into a global factory
        DetectorFactory.seed = 0
        try:
            return str(langdetect.detect(text))
        except LangDetectException:
            return None


def response_language(response: str, *, language: str) -> bool:
    """The whole response is in ``language`` (``language:response_language``).

    As in IFEval, a text whose language cannot be detected (e.g. only digits) passes.
    """
    detected = detect_language(response)
    return detected is None or detected == language


def english_capital(response: str) -> bool:
    """The response is in English and all its letters are capitals (``change_case:english_capital``)."""
    if not response.isupper():
        return False
    detected = detect_language(response)
    return detected is None or detected == "en"


def english_lowercase(response: str) -> bool:
    """The response is in English and has no capital letter (``change_case:english_lowercase``)."""
    if not response.islower():
        return False
    detected = detect_language(response)
    return detected is None or detected == "en"


def capital_word_frequency(response: str, *, capital_frequency: int, capital_relation: str) -> bool:
    """Words in all capitals occur ``capital_relation`` ``capital_frequency`` times.

    Words are Treebank tokens, so "DON'T" is two capital words and "WELL-KNOWN" one.
    """
    count = sum(1 for token in word_tokens(response) if token.isupper())
    return _compare(count, capital_relation, capital_frequency)


# --- length ---------------------------------------------------------------------------------------


def number_sentences(response: str, *, num_sentences: int, relation: str) -> bool:
    """The response has ``relation`` ``num_sentences`` sentences (``length_constraints:number_sentences``)."""
    return _compare(count_sentences(response), relation, num_sentences)


def number_words(response: str, *, num_words: int, relation: str) -> bool:
    """The response has ``relation`` ``num_words`` words (``length_constraints:number_words``)."""
    return _compare(count_words(response), relation, num_words)


def number_paragraphs(response: str, *, num_paragraphs: int) -> bool:
    """Exactly ``num_paragraphs`` paragraphs separated by ``***`` (``length_constraints:number_paragraphs``).

    An empty paragraph between two dividers fails; empty text before the first or after the last
    divider is not a paragraph.
    """
    paragraphs = re.split(r"\s?\*\*\*\s?", response)
    count = len(paragraphs)
    for index, paragraph in enumerate(paragraphs):
        if not paragraph.strip():
            if index in (0, len(paragraphs) - 1):
                count -= 1
            else:
                return False
    return count == num_paragraphs


def nth_paragraph_first_word(
    response: str, *, num_paragraphs: int, nth_paragraph: int, first_word: str
) -> bool:
    """Exactly ``num_paragraphs`` paragraphs separated by blank lines, the ``nth_paragraph``-th
    (from 1) starting with ``first_word``, ignoring case and trailing punctuation.

    Mirrors IFEval exactly, including its quirk of counting only non-empty paragraphs but
    indexing the raw split.
    """
    paragraphs = re.split(r"\n\n", response)
    count = sum(1 for p in paragraphs if p.strip())
    if nth_paragraph > count:
        return False
    paragraph = paragraphs[nth_paragraph - 1].strip()
    if not paragraph:
        return False
    word = paragraph.split()[0].strip().lstrip("'").lstrip('"')
    found = ""
    for char in word:
        if char in {".", ",", "?", "!", "'", '"'}:
            break
        found += char.lower()
    return count == num_paragraphs and found == first_word.lower()


# --- content --------------------------------------------------------------------------------------


def number_placeholders(response: str, *, num_placeholders: int) -> bool:
    """At least ``num_placeholders`` placeholders in square brackets such as ``[address]``."""
    return len(re.findall(r"\[.*?\]", response)) >= num_placeholders


def postscript(response: str, *, postscript_marker: str) -> bool:
    """A line starts a postscript with the marker, e.g. ``P.S.`` (``detectable_content:postscript``).

    ``P.S.`` and ``P.P.S`` also accept a space after each period and any case, as in IFEval.
    """
    marker = postscript_marker.strip()
    if marker == "P.P.S":
        pattern = r"\s*p\.\s?p\.\s?s.*$"
    elif marker == "P.S.":
        pattern = r"\s*p\.\s?s\..*$"
    else:
        pattern = r"\s*" + re.escape(marker.lower()) + r".*$"
    return bool(re.findall(pattern, response.lower(), flags=re.MULTILINE))


# --- format ---------------------------------------------------------------------------------------


def number_bullet_lists(response: str, *, num_bullets: int) -> bool:
    """Exactly ``num_bullets`` markdown bullet points (lines starting with ``*`` or ``-``)."""
    stars = re.findall(r"^\s*\*[^\*].*$", response, flags=re.MULTILINE)
    dashes = re.findall(r"^\s*-.*$", response, flags=re.MULTILINE)
    return len(stars) + len(dashes) == num_bullets


def constrained_response(response: str) -> bool:
    """The response contains one of "My answer is yes./no./maybe." (``detectable_format:constrained_response``)."""
    stripped = response.strip()
    return any(option in stripped for option in CONSTRAINED_OPTIONS)


def number_highlighted_sections(response: str, *, num_highlights: int) -> bool:
    """At least ``num_highlights`` non-empty ``*highlighted*`` spans on one line each.

    ``**bold**`` counts too (once, as a double highlight), as in IFEval.
    """
    singles = re.findall(r"\*[^\n\*]*\*", response)
    doubles = re.findall(r"\*\*[^\n\*]*\*\*", response)
    count = sum(1 for h in singles if h.strip("*").strip())
    count += sum(1 for h in doubles if h.removeprefix("**").removesuffix("**").strip())
    return count >= num_highlights


def multiple_sections(response: str, *, section_spliter: str, num_sections: int) -> bool:
    """At least ``num_sections`` sections, each opened by the splitter and a number ("Section 1")."""
    pattern = r"\s?" + re.escape(section_spliter.strip()) + r"\s?\d+\s?"
    return len(re.split(pattern, response)) - 1 >= num_sections


def json_format(response: str) -> bool:
    """The whole response is JSON, optionally inside a markdown code fence (``detectable_format:json_format``)."""
    value = (
        response.strip()
        .removeprefix("```json")
        .removeprefix("```Json")
        .removeprefix("```JSON")
        .removeprefix("```")
        .removesuffix("```")
        .strip()
    )
    try:
        json.loads(value)
    except ValueError:
        return False
    return True


def title(response: str) -> bool:
    """A non-empty title in double angular brackets on one line, e.g. ``<<poem of joy>>``."""
    return any(t.lstrip("<").rstrip(">").strip() for t in re.findall(r"<<[^\n]+>>", response))


def two_responses(response: str) -> bool:
    """Two different responses separated by ``******`` (``combination:two_responses``)."""
    parts = response.split("******")
    valid = []
    for index, part in enumerate(parts):
        if part.strip():
            valid.append(part)
        elif index not in (0, len(parts) - 1):
            return False
    return len(valid) == 2 and valid[0].strip() != valid[1].strip()


def repeat_prompt(response: str, *, prompt_to_repeat: str) -> bool:
    """The response starts by repeating the request, ignoring case (``combination:repeat_prompt``)."""
    return response.strip().lower().startswith(prompt_to_repeat.strip().lower())


def end_checker(response: str, *, end_phrase: str) -> bool:
    """The response ends with the phrase, ignoring case and surrounding quotes (``startend:end_checker``)."""
    return response.strip().strip('"').lower().endswith(end_phrase.strip().lower())


def quotation(response: str) -> bool:
    """The whole response is wrapped in double quotation marks (``startend:quotation``)."""
    value = response.strip()
    return len(value) > 1 and value[0] == '"' and value[-1] == '"'


def no_comma(response: str) -> bool:
    """The response has no comma (``punctuation:no_comma``); only the ASCII comma counts."""
    return "," not in response


# The IFEval registry: instruction id -> check. A plain dict is all the lookup needs.
CHECKS: dict[str, Callable[..., bool]] = {
    "keywords:existence": keywords_existence,
    "keywords:frequency": keyword_frequency,
    "keywords:forbidden_words": forbidden_words,
    "keywords:letter_frequency": letter_frequency,
    "language:response_language": response_language,
    "length_constraints:number_sentences": number_sentences,
    "length_constraints:number_paragraphs": number_paragraphs,
    "length_constraints:number_words": number_words,
    "length_constraints:nth_paragraph_first_word": nth_paragraph_first_word,
    "detectable_content:number_placeholders": number_placeholders,
    "detectable_content:postscript": postscript,
    "detectable_format:number_bullet_lists": number_bullet_lists,
    "detectable_format:constrained_response": constrained_response,
    "detectable_format:number_highlighted_sections": number_highlighted_sections,
    "detectable_format:multiple_sections": multiple_sections,
    "detectable_format:json_format": json_format,
    "detectable_format:title": title,
    "combination:two_responses": two_responses,
    "combination:repeat_prompt": repeat_prompt,
    "startend:end_checker": end_checker,
    "startend:quotation": quotation,
    "change_case:capital_word_frequency": capital_word_frequency,
    "change_case:english_capital": english_capital,
    "change_case:english_lowercase": english_lowercase,
    "punctuation:no_comma": no_comma,
}


def loose_variants(response: str) -> list[str]:
    """The eight texts IFEval's loose mode tries: the response, without its first line, without
    its last line, without both, and each of those with every ``*`` removed."""
    lines = response.split("\n")
    no_first = "\n".join(lines[1:]).strip()
    no_last = "\n".join(lines[:-1]).strip()
    no_both = "\n".join(lines[1:-1]).strip()
    return [
        response,
        response.replace("*", ""),
        no_first,
        no_last,
        no_both,
        no_first.replace("*", ""),
        no_last.replace("*", ""),
        no_both.replace("*", ""),
    ]


@functools.cache
def _parameters(instruction_id: str) -> inspect.Signature:
    return inspect.signature(CHECKS[instruction_id])


def instruction_arguments(
    instruction_id: str, kwargs: dict[str, Any] | None, prompt: str | None = None
) -> dict[str, Any]:
    """The keyword arguments of one instruction's check, validated.

    Arguments whose value is None are dropped (the IFEval file on the Hugging Face hub lists every
    argument of every instruction, with None for the unused ones). For
    ``combination:repeat_prompt`` without ``prompt_to_repeat`` the prompt itself is used.

    Raises:
        DataError: the id is unknown, or the arguments do not fit its check.
    """
    if instruction_id not in CHECKS:
        raise DataError(
            f"unknown IFEval instruction id {instruction_id!r}; known ids: {sorted(CHECKS)}"
        )
    args = {k: v for k, v in (kwargs or {}).items() if v is not None}
    if instruction_id == "combination:repeat_prompt" and "prompt_to_repeat" not in args and prompt:
        args["prompt_to_repeat"] = prompt
    try:
        _parameters(instruction_id).bind("", **args)
    except TypeError as err:
        raise DataError(f"instruction {instruction_id!r} got arguments {args}: {err}") from None
    return args


def follows(
    instruction_id: str,
    response: str,
    kwargs: dict[str, Any] | None,
    loose: bool = False,
    prompt: str | None = None,
) -> bool:
    """Whether ``response`` follows one IFEval instruction.

    Args:
        instruction_id: an IFEval id such as ``"punctuation:no_comma"``.
        response: the model's response.
        kwargs: the instruction's arguments from the IFEval file; None values are ignored.
        loose: IFEval's loose mode, which passes if any of ``loose_variants(response)`` passes.
        prompt: the prompt, used by ``combination:repeat_prompt`` when its argument is missing.

    Returns:
        True if the instruction is followed. An empty or all-whitespace response never is.

    Raises:
        DataError: unknown instruction id or arguments that do not fit it.
    """
    args = instruction_arguments(instruction_id, kwargs, prompt)
    check = CHECKS[instruction_id]
    candidates = loose_variants(response) if loose else [response]
    return any(text.strip() and check(text, **args) for text in candidates)
