"""``codit filter``: a training set from generated records, and what each rule took out.

Three rules, each optional:

* ``--min-score S``: keep records whose judge score is at least S; an unscored record (the judge
  gave no readable score) is removed, and counted apart. Needs ``codit annotate`` first.
* ``--drop-repetitive``: remove responses the repetition flag marks (``annotation.repetition``);
* ``--drop-length-capped``: remove responses that stopped at the token cap
  (``meta.finish_reason == "length"``), i.e. were cut off.

The repetition and length rules need no judge: on a record without an ``annotation`` they are
computed from the record itself (``annotation.measures``), so any records file can be filtered.
Records are written unchanged (TRL's format, ``meta`` and ``annotation`` included), in input
order. The report counts, per rule, every record that rule flags (a record may be flagged by
several), plus the records removed in all, and sums up the records ``before`` and ``after``
(mean length, cut-offs, repetition by rule, mean score); it is printed and written to
``OUTPUT.report.json``.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codit.annotation.files import (
    Item,
    check_paths,
    read_items,
    report_path,
    write_json,
    write_records,
)
from codit.annotation.measures import measures
from codit.errors import DataError
from codit.io.lock import locked
from codit.settings import check, setting

RULES = ("min_score", "repetitive", "length_capped")


@dataclass(frozen=True)
class FilterConfig:
    """Settings of ``codit filter``."""

    input: str | None = setting(None, "records (annotated or not)")
    output: str | None = setting(None, "the training set, .jsonl")
    min_score: float | None = setting(
        None, "keep judge scores >= this (needs codit annotate)", ge=1, le=10, optional=True
    )
    drop_repetitive: bool = setting(False, "remove responses the repetition flag marks")
    drop_length_capped: bool = setting(False, "remove responses cut off at the token cap")

    def __post_init__(self) -> None:
        problems: list[str] = []
        check_paths(self.input, self.output, problems)
        check(self, problems)


def facts(item: Item) -> dict[str, Any]:
    """The record's annotation, or the judge-free facts computed from the record itself."""
    annotation = item.record.get("annotation")
    if isinstance(annotation, dict) and "repetition" in annotation:
        return annotation
    return measures(item.record, item.response.response)


def flags(found: dict[str, Any], config: FilterConfig) -> list[str]:
    """The rules (of those switched on) that remove a record with these ``facts``."""
    out = []
    if config.min_score is not None:
        score = found.get("score")
        if score is None or score < config.min_score:
            out.append("min_score")
    if config.drop_repetitive and found["repetition"]["repetitive"]:
        out.append("repetitive")
    if config.drop_length_capped and found["length_capped"] is True:
        out.append("length_capped")
    return out


def check_scored(items: list[Item], path: str) -> None:
    """``--min-score`` needs every record annotated by ``codit annotate``."""
    missing = [
        i
        for i in items
        if not isinstance(i.record.get("annotation"), dict) or "score" not in i.record["annotation"]
    ]
    if missing:
        raise DataError(
            f"--min-score needs judge scores, but {len(missing)} of {len(items)} records of {path}"
            f" have none (first: record {missing[0].line}); run codit annotate on it first"
        )


def filter_records(
    items: list[Item], config: FilterConfig
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The kept records, in order, and the report of what each rule removed."""
    kept = []
    kept_facts: list[dict[str, Any]] = []
    all_facts: list[dict[str, Any]] = []
    flagged: Counter[str] = Counter()
    combos: Counter[str] = Counter()
    fired: Counter[str] = Counter()
    unscored = computed = capped_unknown = 0
    for item in items:
        found = facts(item)
        all_facts.append(found)
        computed += found is not item.record.get("annotation")
        capped_unknown += found["length_capped"] is None
        rules = flags(found, config)
        if "min_score" in rules and found.get("score") is None:
            unscored += 1
        if "repetitive" in rules:
            fired.update(found["repetition"]["fired"])
        flagged.update(rules)
        if rules:
            combos["+".join(rules)] += 1
        else:
            kept.append(item.record)
            kept_facts.append(found)
    report: dict[str, Any] = {
        "records": len(items),
        "kept": len(kept),
        "removed": len(items) - len(kept),
    }
    if config.min_score is not None:
        report["min_score"] = {
            "threshold": config.min_score,
            "removed": flagged["min_score"],
            "of_which_unscored": unscored,
        }
    if config.drop_repetitive:
        report["repetitive"] = {"removed": flagged["repetitive"], "by_rule": dict(fired)}
    if config.drop_length_capped:
        report["length_capped"] = {
            "removed": flagged["length_capped"],
            "finish_reason_unknown": capped_unknown,
        }
    report["removed_by"] = dict(sorted(combos.items()))
    report["computed_without_annotation"] = computed
    report["before"] = summary(all_facts)
    report["after"] = summary(kept_facts)
    return kept, report


def summary(found: list[dict[str, Any]]) -> dict[str, Any]:
    """Length, cut-offs, repetition and scores of a set of records (their ``facts``)."""
    tokens = [f["tokens"] for f in found if f.get("tokens") is not None]
    scores = [f["score"] for f in found if f.get("score") is not None]
    checked = [f["repetition"] for f in found if f["repetition"]["checked"]]
    repetitive = [r for r in checked if r["repetitive"]]

    def mean(values: list[float]) -> float | None:
        return round(statistics.fmean(values), 2) if values else None

    return {
        "records": len(found),
        "mean_chars": mean([f["chars"] for f in found if f.get("chars") is not None]),
        "mean_tokens": mean(tokens),
        "length_capped": sum(f.get("length_capped") is True for f in found),
        "repetition_checked": len(checked),
        "repetitive": len(repetitive),
        "repetitive_by_rule": dict(Counter(rule for r in repetitive for rule in r["fired"])),
        "scored": len(scores),
        "mean_score": mean(scores),
    }


def run_filter(config: FilterConfig) -> dict[str, Any]:
    """Filter ``config.input`` into ``config.output``; returns the report (also written beside it).

    Raises:
        OutputLocked: another run is writing ``config.output``.
    """
    with locked(Path(str(config.output)), "filter"):
        return _run_filter(config)


def _run_filter(config: FilterConfig) -> dict[str, Any]:
    items = read_items(str(config.input), need_ids=False)
    if config.min_score is not None:
        check_scored(items, str(config.input))
    kept, report = filter_records(items, config)
    output = Path(str(config.output))
    output.parent.mkdir(parents=True, exist_ok=True)
    write_records(output, kept)
    report = {"input": str(config.input), "output": str(output), **report}
    write_json(report_path(output), report)
    return report
