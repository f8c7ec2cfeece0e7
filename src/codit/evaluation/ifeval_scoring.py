"""IFEval's scores: each response checked per instruction, strict and loose, then summed up.

Pure functions on prompts and texts: ``match_responses`` assigns responses to prompts,
``evaluate`` gives each prompt its verdicts (``checks.follows``), ``summarize`` the four
accuracies of the paper (prompt and instruction level, strict and loose) and their breakdowns.
No files are read or written here.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
from typing import Any

from codit.errors import DataError
from codit.evaluation.checks import follows
from codit.evaluation.ifeval_data import IFEvalPrompt
from codit.evaluation.responses import Response


@dataclass(frozen=True)
class Verdict:
    """The verdicts on one prompt, in the order of ``instruction_id_list``."""

    key: int | str
    instruction_id_list: list[str]
    follow_strict: list[bool]
    follow_loose: list[bool]
    missing: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "instruction_id_list": self.instruction_id_list,
            "follow_strict": self.follow_strict,
            "follow_loose": self.follow_loose,
            "follow_all_strict": all(self.follow_strict),
            "follow_all_loose": all(self.follow_loose),
            "missing": self.missing,
        }


@dataclass(frozen=True)
class Matching:
    """Responses assigned to prompt keys, with what could not be assigned."""

    by_key: dict[str, str]
    unmatched: int
    duplicates: int


def match_responses(prompts: list[IFEvalPrompt], responses: list[Response]) -> Matching:
    """Assign each response to a prompt: by key/id when it is an IFEval key, else by prompt text.

    The first response for a prompt wins; later ones are counted as duplicates. Keys in the
    result are strings.
    """
    keys = {str(p.key) for p in prompts}
    by_text = {p.prompt: str(p.key) for p in prompts}
    by_key: dict[str, str] = {}
    unmatched = duplicates = 0
    for r in responses:
        key = r.key if r.key in keys else by_text.get(r.prompt or "")
        if key is None:
            unmatched += 1
        elif key in by_key:
            duplicates += 1
        else:
            by_key[key] = r.response
    return Matching(by_key, unmatched, duplicates)


def evaluate(prompts: list[IFEvalPrompt], by_key: dict[str, str]) -> list[Verdict]:
    """Strict and loose verdicts for every prompt; a prompt without a response fails them all."""
    verdicts = []
    for p in prompts:
        response = by_key.get(str(p.key))
        if response is None:
            fails = [False] * len(p.instruction_id_list)
            verdicts.append(Verdict(p.key, p.instruction_id_list, fails, list(fails), missing=True))
            continue
        pairs = list(zip(p.instruction_id_list, p.kwargs, strict=True))
        strict = [follows(i, response, k, loose=False, prompt=p.prompt) for i, k in pairs]
        loose = [follows(i, response, k, loose=True, prompt=p.prompt) for i, k in pairs]
        verdicts.append(Verdict(p.key, p.instruction_id_list, strict, loose))
    return verdicts


def summarize(verdicts: list[Verdict]) -> dict[str, Any]:
    """Prompt- and instruction-level accuracy, strict and loose, overall and per instruction."""
    if not verdicts:
        raise DataError("there are no prompts to score")
    totals: collections.Counter[str] = collections.Counter()
    strict: collections.Counter[str] = collections.Counter()
    loose: collections.Counter[str] = collections.Counter()
    for v in verdicts:
        for i, s, lo in zip(v.instruction_id_list, v.follow_strict, v.follow_loose, strict=True):
            totals[i] += 1
            strict[i] += s
            loose[i] += lo
    n_instructions = sum(totals.values())
    categories = sorted({i.split(":")[0] for i in totals})

    def by_category(counts: collections.Counter[str]) -> dict[str, float]:
        return {
            c: sum(counts[i] for i in totals if i.split(":")[0] == c)
            / sum(totals[i] for i in totals if i.split(":")[0] == c)
            for c in categories
        }

    return {
        "prompt_level_strict": sum(all(v.follow_strict) for v in verdicts) / len(verdicts),
        "instruction_level_strict": sum(strict.values()) / n_instructions,
        "prompt_level_loose": sum(all(v.follow_loose) for v in verdicts) / len(verdicts),
        "instruction_level_loose": sum(loose.values()) / n_instructions,
        "num_prompts": len(verdicts),
        "num_instructions": n_instructions,
        "missing_responses": sum(v.missing for v in verdicts),
        "missing_keys": [v.key for v in verdicts if v.missing],
        "per_instruction": {i: strict[i] / totals[i] for i in sorted(totals)},
        "per_instruction_loose": {i: loose[i] / totals[i] for i in sorted(totals)},
        "per_instruction_count": {i: totals[i] for i in sorted(totals)},
        "per_category_strict": by_category(strict),
        "per_category_loose": by_category(loose),
    }
