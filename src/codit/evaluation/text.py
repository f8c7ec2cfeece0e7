"""Offline sentence counting and word tokenisation for the IFEval checks.

IFEval's reference implementation counts sentences with NLTK's Punkt model
(``tokenizers/punkt/english.pickle``) and capital words with ``nltk.word_tokenize``; both need
NLTK data downloaded at run time, which codit never does. This module re-implements the
decisions those tokenizers make, with no data files:

* ``count_sentences`` follows Punkt's algorithm (Kiss & Strunk 2006, as coded in
  ``nltk.tokenize.punkt``): a candidate break is a ``.``, ``?`` or ``!`` followed by whitespace
  and a token, or by punctuation; ``?`` and ``!`` always break; a word ending in a period breaks
  unless it is a known abbreviation, an initial or an ellipsis, which break only when the next
  word looks like a sentence start; a number ending in a period (``1.``) breaks unless the next
  word is lower case. Punkt's learned statistics are replaced by a hand-written abbreviation list
  and by capitalisation as the orthographic evidence, so counts can differ from Punkt on rare
  abbreviations and on capitalised proper names after an abbreviation.
* ``word_tokens`` follows the splitting rules of NLTK's Treebank word tokenizer that matter for
  case checks (punctuation split off, contractions such as ``n't`` and ``'s`` split off).
* ``count_words`` is exactly IFEval's: the number of ``\\w+`` runs.

Not a general-purpose NLP toolkit: it exists so that the checks in ``checks.py`` give IFEval's
verdicts offline.
"""

from __future__ import annotations

import re

# Abbreviations (lower case, without the final period) that do not end a sentence by themselves.
# Punkt learns these from a corpus; these are the ones that occur in ordinary English prose.
# fmt: off
ABBREVIATIONS = frozenset([
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "ft", "vs", "etc", "e.g", "i.e", "cf",
    "al", "approx", "dept", "est", "inc", "ltd", "co", "corp", "jan", "feb", "mar", "apr", "jun",
    "jul", "aug", "sep", "sept", "oct", "nov", "dec", "mon", "tue", "tues", "wed", "thu", "thur",
    "thurs", "fri", "sat", "sun", "no", "nos", "vol", "vols", "fig", "figs", "ch", "pp", "ed",
    "eds", "rev", "gen", "col", "lt", "sgt", "capt", "cmdr", "adm", "gov", "sen", "rep", "hon",
    "u.s", "u.k", "u.n", "a.m", "p.m", "d.c", "n.y", "l.a", "ph.d", "b.a", "m.a", "b.sc", "m.sc",
])

# Titles before a name: the capitalised word after them is a name, not a sentence start.
TITLES = frozenset([
    "mr", "mrs", "ms", "dr", "prof", "st", "capt", "gen", "col", "lt", "sgt", "rev", "hon", "sen",
    "rep", "gov", "adm", "cmdr",
])
# fmt: on

# The characters Punkt accepts right after a sentence-ending character (its NonWord class).
_NON_WORD = r"[?!)\";}\]*:@'({\[]"
_CANDIDATE = re.compile(r"[.?!](?=(?P<after>" + _NON_WORD + r")|\s+(?P<next>\S+))")
# A token ends at whitespace or at one of these; Punkt's word tokenizer splits them off.
_LAST_TOKEN = re.compile(r"[^\s?!)\";}\]*:@'({\[]*$")
_NUMBER = re.compile(r"^-?[.,]?\d[\d,.-]*\.?$")
_INITIAL = re.compile(r"^[^\W\d]\.$")
_CLOSING = re.compile(r"[\"')\]}]+?(?:\s+|$)")


def count_words(text: str) -> int:
    """The number of words, as IFEval counts them: runs of ``\\w`` characters."""
    return len(re.findall(r"\w+", text))


def _first_token(text: str) -> str:
    """The first Punkt word token of ``text`` (punctuation characters are tokens of their own)."""
    match = re.match(r"[^\s?!)\";}\]*:@'({\[,]+|\S", text)
    return match.group(0) if match else ""


def _sentence_starter(token: str) -> bool | None:
    """Punkt's orthographic heuristic, with capitalisation standing in for corpus statistics.

    Returns True (the token starts a sentence), False (it does not) or None (unknown).
    """
    if token in (";", ":", ",", ".", "!", "?"):
        return False
    if not token or not token[0].isalpha():
        return None
    if token[0].isupper():
        # "I" is capitalised in the middle of sentences too, so it is no evidence.
        return None if token == "I" else True
    return False


def _period_breaks(text: str, start: int, end: int, next_token: str) -> bool:
    """Whether the period at ``text[end - 1]`` ends a sentence that began at ``start``."""
    # Only the last 100 characters can hold the token; this keeps the scan linear.
    match = _LAST_TOKEN.search(text, max(start, end - 100), end)
    token = match.group(0).lstrip("`{[:;&#*@)}]-,(\"'") if match else ""
    if token.endswith(".."):
        # An ellipsis: a break only when the next word evidently starts a sentence.
        return _sentence_starter(next_token) is True
    word = token[:-1].lower()
    if word in TITLES:
        return False
    if word in ABBREVIATIONS or word.split("-")[-1] in ABBREVIATIONS:
        return _sentence_starter(next_token) is True
    if _INITIAL.match(token):
        return _sentence_starter(next_token) is True
    if _NUMBER.match(token):
        return _sentence_starter(next_token) is not False
    return True


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Split ``text`` into sentences the way Punkt does; returns (start, end) character spans."""
    spans: list[tuple[int, int]] = []
    last = 0
    for match in _CANDIDATE.finditer(text):
        after, following = match.group("after"), match.group("next")
        if match.group(0) == ".":
            next_token = after if after else _first_token(following)
            if not _period_breaks(text, last, match.end(), next_token):
                continue
        spans.append((last, match.end()))
        last = match.start("next") if following else match.end()
    spans.append((last, len(text.rstrip())))
    return _realign(text, spans)


def _realign(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Move closing quotes and brackets that open a sentence onto the previous one (Punkt does)."""
    out: list[tuple[int, int]] = []
    shift = 0
    for i, (start, end) in enumerate(spans):
        start += shift
        shift = 0
        if i + 1 < len(spans):
            nxt_start, nxt_end = spans[i + 1]
            closing = _CLOSING.match(text, nxt_start, nxt_end)
            if closing:
                out.append((start, nxt_start + len(closing.group(0).rstrip())))
                shift = closing.end() - nxt_start
                continue
        if text[start:end]:
            out.append((start, end))
    return out


def count_sentences(text: str) -> int:
    """The number of sentences in ``text``, as IFEval's Punkt-based count would give."""
    return len(sentence_spans(text))


_CONTRACTION_WORDS = re.compile(
    r"(?i)\b(can)(not)\b|\b(gon|wan)(na)\b|\b(got)(ta)\b|\b(lem|gim)(me)\b"
)
_CONTRACTION_SUFFIX = re.compile(r"(?i)([^'\s])('s|'m|'d|'ll|'re|'ve|n't)(?=\W|$)")


def word_tokens(text: str) -> list[str]:
    """Split ``text`` into words and punctuation like NLTK's Treebank word tokenizer.

    Only the splits that change which tokens are upper case are reproduced: brackets, quotes and
    most symbols become tokens of their own, commas and colons too unless inside a number, and
    contractions are split (``DON'T`` -> ``DO``, ``N'T``; ``CANNOT`` -> ``CAN``, ``NOT``).
    """
    text = _CONTRACTION_WORDS.sub(lambda m: " ".join(g for g in m.groups() if g), text)
    text = re.sub(r"[;@#$%&?!*()\[\]{}<>\"`]|--|\.{2,}", r" \g<0> ", text)
    text = re.sub(r"[:,](?=\D|$)", r" \g<0> ", text)
    text = _CONTRACTION_SUFFIX.sub(r"\1 \2", text)
    return text.split()
