"""``codit select --best``: the Best-of-N baseline, the best-graded sample of every prompt.

The CoDIT authors compare CoDIT with Best-of-N: N direct samples per prompt
(``codit generate --mode direct --num-samples N``), each graded by the judge
(``codit annotate``), the best one kept. Candidates are grouped by ``meta.prompt_id`` (a record
that is no sample is the only candidate of its id). The winner is the highest-scored candidate;
ties go to the lowest sample index (then the earliest in the file), so the choice never depends
on anything but the file. Unscored candidates never win over a scored one; a prompt with no
scored candidate at all is left out and listed in the report.

The winner is written unchanged except that its ``id`` becomes the prompt's id (so the output
pairs with direct and CoDIT files by id, e.g. in ``codit eval judge``) and ``meta`` gains
``sample_id`` (the candidate's own id) and ``best_of`` (how many candidates it was chosen from).
"""

from __future__ import annotations

import statistics
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
from codit.errors import DataError
from codit.generation.samples import sample_of
from codit.io.lock import locked
from codit.settings import check, setting


@dataclass(frozen=True)
class SelectConfig:
    """Settings of ``codit select``."""

    input: str | None = setting(None, "annotated samples (codit annotate)")
    output: str | None = setting(None, "one record per prompt, .jsonl")
    best: bool = setting(False, "keep the highest-scored sample of each prompt")

    def __post_init__(self) -> None:
        problems: list[str] = []
        check_paths(self.input, self.output, problems)
        if not self.best:
            problems.append("say how to select: --best (the highest judge score per prompt)")
        check(self, problems)


def score_of(item: Item) -> int | float | None:
    annotation = item.record.get("annotation")
    return annotation.get("score") if isinstance(annotation, dict) else None


def best_of(candidates: list[Item]) -> Item | None:
    """The highest-scored candidate; ties go to the lowest sample index, then the earliest line.
    None when no candidate is scored."""
    scored = [c for c in candidates if score_of(c) is not None]
    if not scored:
        return None

    def rank(item: Item) -> tuple[float, float, int]:
        index = sample_of(item.record)[1]
        return (-float(score_of(item)), float("inf") if index is None else index, item.line)  # type: ignore[arg-type]

    return min(scored, key=rank)


def group(items: list[Item]) -> dict[str, list[Item]]:
    """Candidates by prompt id, prompts in order of first appearance."""
    groups: dict[str, list[Item]] = {}
    for item in items:
        groups.setdefault(sample_of(item.record)[0], []).append(item)
    return groups


def select_best(items: list[Item]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The winner of every prompt (as written) and the report."""
    chosen: list[dict[str, Any]] = []
    left_out: list[str] = []
    ties = 0
    winners: list[float] = []
    for prompt_id, candidates in group(items).items():
        winner = best_of(candidates)
        if winner is None:
            left_out.append(prompt_id)
            continue
        top = score_of(winner)
        ties += sum(score_of(c) == top for c in candidates) > 1
        winners.append(float(top))  # type: ignore[arg-type]
        meta = dict(winner.record.get("meta") or {})
        meta.update(sample_id=winner.id, best_of=len(candidates))
        chosen.append({**winner.record, "id": prompt_id, "meta": meta})
    scored = [float(s) for s in (score_of(i) for i in items) if s is not None]
    report = {
        "candidates": len(items),
        "unscored_candidates": len(items) - len(scored),
        "prompts": len(chosen) + len(left_out),
        "chosen": len(chosen),
        "ties_broken": ties,
        "no_scored_candidate": left_out,
        "mean_score_all_candidates": round(statistics.fmean(scored), 4) if scored else None,
        "mean_score_chosen": round(statistics.fmean(winners), 4) if winners else None,
    }
    return chosen, report


def run_select(config: SelectConfig) -> dict[str, Any]:
    """Select from ``config.input`` into ``config.output``; returns the report (also beside it).

    Raises:
        OutputLocked: another run is writing ``config.output``.
    """
    with locked(Path(str(config.output)), "select"):
        return _run_select(config)


def _run_select(config: SelectConfig) -> dict[str, Any]:
    items = read_items(str(config.input))
    unannotated = [i for i in items if not isinstance(i.record.get("annotation"), dict)]
    if unannotated:
        raise DataError(
            f"select --best needs judge scores, but {len(unannotated)} records of {config.input}"
            f" have no annotation (first: record {unannotated[0].line}); run codit annotate first"
        )
    chosen, report = select_best(items)
    output = Path(str(config.output))
    output.parent.mkdir(parents=True, exist_ok=True)
    write_records(output, chosen)
    report = {"input": str(config.input), "output": str(output), **report}
    write_json(report_path(output), report)
    return report
