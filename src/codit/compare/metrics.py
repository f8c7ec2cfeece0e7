"""The numbers ``codit compare`` reports: pure functions of response texts and record metadata.

* Length: a record's ``meta.completion_tokens`` when it has one, else its number of words
  (IFEval's count: runs of ``\\w``); a comparison uses tokens only when every record of both
  sides has them, so the two sides are always in one unit.
* Distinct-n (Li et al. 2016, "A Diversity-Promoting Objective Function for Neural Conversation
  Models", arXiv:1510.03055): distinct n-grams over all n-grams of all responses of one side,
  on lower-cased words.
* Difference of two answers: 1 - the Jaccard similarity of their sets of lower-cased words
  (0 = the same words, 1 = no word in common); two empty answers differ by 0.
* Instruction following: IFEval's strict verdicts (``codit.evaluation.checks.follows``), per
  instruction id and per prompt (every instruction followed).

Nothing here reads files or draws.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

_WORD = re.compile(r"\w+")


def words(text: str) -> list[str]:
    """Lower-cased ``\\w+`` runs, the unit of distinct-n and of word lengths."""
    return _WORD.findall(text.lower())


def quantile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile with linear interpolation between order statistics (numpy's default)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def length_summary(values: Sequence[float]) -> dict[str, float]:
    """n, mean, median, p10, p90, min and max of a list of lengths."""
    if not values:
        return {"n": 0, "mean": 0.0, "median": 0.0, "p10": 0.0, "p90": 0.0, "min": 0, "max": 0}
    return {
        "n": len(values),
        "mean": sum(values) / len(values),
        "median": quantile(values, 0.5),
        "p10": quantile(values, 0.1),
        "p90": quantile(values, 0.9),
        "min": min(values),
        "max": max(values),
    }


def length_unit(metas: Iterable[dict[str, Any]]) -> str:
    """``tokens`` if every record carries ``completion_tokens``, else ``words``."""
    ok = all(isinstance(m.get("completion_tokens"), int) for m in metas)
    return "tokens" if ok else "words"


def response_length(text: str, meta: dict[str, Any], unit: str) -> int:
    """The length of one response in ``unit`` (``tokens`` from the metadata, or ``words``)."""
    return int(meta["completion_tokens"]) if unit == "tokens" else len(words(text))


def shares(counts: dict[str, int]) -> dict[str, float]:
    """Each key's share of the total (most frequent first)."""
    total = sum(counts.values())
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return {k: (v / total if total else 0.0) for k, v in ordered}


def finish_reasons(metas: Iterable[dict[str, Any]]) -> dict[str, int]:
    """Records per finish reason (``unknown`` where the metadata has none)."""
    return dict(Counter(str(m.get("finish_reason", "unknown")) for m in metas))


def distinct_n(texts: Iterable[str], n: int) -> float:
    """Distinct n-grams / all n-grams over every response (0 when there is no n-gram)."""
    seen: set[tuple[str, ...]] = set()
    total = 0
    for text in texts:
        w = words(text)
        grams = [tuple(w[i : i + n]) for i in range(len(w) - n + 1)]
        total += len(grams)
        seen.update(grams)
    return len(seen) / total if total else 0.0


def difference(a: str, b: str) -> float:
    """1 - Jaccard similarity of the two answers' lower-cased word sets."""
    wa, wb = set(words(a)), set(words(b))
    union = wa | wb
    return 1.0 - len(wa & wb) / len(union) if union else 0.0


def identical_share(pairs: Sequence[tuple[str, str]]) -> float:
    """The share of pairs whose two answers are the same text (surrounding whitespace aside)."""
    if not pairs:
        return 0.0
    return sum(a.strip() == b.strip() for a, b in pairs) / len(pairs)


def most_different(pairs: dict[str, tuple[str, str]], k: int) -> list[tuple[str, float]]:
    """The ``k`` ids whose answers differ most: by ``difference``, then by length gap, then id."""
    scored = [
        (key, difference(a, b), abs(len(words(a)) - len(words(b)))) for key, (a, b) in pairs.items()
    ]
    scored.sort(key=lambda t: (-t[1], -t[2], t[0]))
    return [(key, d) for key, d, _ in scored[:k]]


def check_verdicts(
    response: str,
    instruction_ids: Sequence[str],
    kwargs: Sequence[dict[str, Any] | None],
    prompt: str,
) -> list[bool]:
    """IFEval's strict verdict on each instruction of one prompt."""
    from codit.evaluation.checks import follows

    return [
        follows(iid, response, kw, loose=False, prompt=prompt)
        for iid, kw in zip(instruction_ids, kwargs, strict=True)
    ]


def check_rates(verdicts: Iterable[tuple[Sequence[str], Sequence[bool]]]) -> dict[str, Any]:
    """Pass shares from (instruction ids, verdicts) per prompt.

    Returns:
        ``{"prompts": n, "prompt_level": share of prompts with every instruction followed,
        "instruction_level": share of all instructions followed, "per_instruction": {id: share},
        "per_instruction_count": {id: n}}``.
    """
    prompts = every = followed = total = 0
    passed: Counter[str] = Counter()
    seen: Counter[str] = Counter()
    for ids, marks in verdicts:
        prompts += 1
        every += all(marks)
        followed += sum(marks)
        total += len(marks)
        for iid, ok in zip(ids, marks, strict=True):
            seen[iid] += 1
            passed[iid] += ok
    return {
        "prompts": prompts,
        "prompt_level": every / prompts if prompts else 0.0,
        "instruction_level": followed / total if total else 0.0,
        "per_instruction": {iid: passed[iid] / seen[iid] for iid in sorted(seen)},
        "per_instruction_count": {iid: seen[iid] for iid in sorted(seen)},
    }
