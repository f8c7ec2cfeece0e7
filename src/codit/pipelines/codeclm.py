"""CodecLM: instructions tailored to a target model, written and judged by a strong model.

Paper: Zifeng Wang et al., "CodecLM: Aligning Language Models with Tailored Synthetic Data",
Findings of NAACL 2024, arXiv:2404.05875. No official code exists; every knob below is a field of
``CodecLMConfig`` (docs/methods/codeclm.md sets each against the paper). ``run_codeclm`` reads top to bottom:

1. Encode: the strong model labels each seed instruction with one use case and at most three
   skills (few-shot prompt ``codeclm_encode.txt``).
2. Augment: the metadata pool grows to ``pool_size`` entries by sampling one use case and one or
   more skills without replacement; a ``metadata_filter`` hook drops nonsensical combinations (the
   authors did it by hand; the pool is also written to ``OUTPUT.pool.jsonl``, which a rerun reads
   back, so it can be edited by hand between ``--pool-only`` and the real run).
3. Decode: for each entry the strong model writes its share of the ``num_instructions`` budget;
   with ``num_pairs`` (the paper's budgets count kept pairs) further passes over the pool write
   more until that many pairs are kept or the pool is spent.
4. Self-Rubrics: for each entry the strong model writes rubrics of complexity and, for each, an
   action that makes an instruction harder.
5. Contrastive Filtering, at most ``max_iterations`` times (writing the basic instruction counts
   as the first): both models answer, the strong model scores both answers 1-10 twice with their
   order swapped, and the gap G = S(strong) - S(target) is averaged over the two orders.
   G > theta keeps (instruction, strong answer); G < -theta keeps (instruction, target answer);
   otherwise one randomly chosen action improves the instruction for another round, and after
   the last round the instruction is dropped.

Steps 1-4 live in ``codeclm_steps.py``, step 5 in ``codeclm_filter.py``. Kept pairs are TRL
conversational records; dropped instructions and failures go to side files (``outputs.py``),
every call is cached, and a rerun resumes. Not here: training and evaluation.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from codit.backends.base import TextBackend
from codit.backends.cost import Metered
from codit.errors import DataError
from codit.io.jsonl import read_records
from codit.io.records import RecordWriter
from codit.pipelines.codeclm_config import CodecLMConfig
from codit.pipelines.codeclm_filter import contrastive_filter
from codit.pipelines.codeclm_parse import Metadata, Rubric
from codit.pipelines.codeclm_steps import (
    Chain,
    Progress,
    augment,
    decode,
    encode,
    read_pool,
    self_rubrics,
    write_pool,
)
from codit.pipelines.outputs import (
    distribution,
    model_name,
    side,
)
from codit.pipelines.prompted import PromptedRun, prompted_run

log = logging.getLogger(__name__)


def run_codeclm(
    config: CodecLMConfig,
    *,
    backends: dict[str, TextBackend] | None = None,
    metadata_filter: Callable[[Metadata], bool] | None = None,
    on_progress: Progress | None = None,
) -> dict[str, Any]:
    """Run CodecLM into ``config.output``, resuming whatever an earlier run left unfinished.

    Args:
        config: the run's settings.
        backends: role ("strong", "judge", "target") -> a ready backend instead of the specs.
        metadata_filter: returns False for a sampled metadata entry to leave out of the pool.
        on_progress: called with (stage, done, total) as work finishes, for a progress bar.

    Returns:
        The report, also written to ``OUTPUT.report.json``.

    Raises:
        BackendError: a backend failed for good; every finished call and record is kept.
    """
    stages: dict[str, Any] = {}
    unparsable: Counter[str] = Counter()

    def work(opened: PromptedRun) -> None:
        output, roles, progress = opened.output, opened.roles, opened.progress
        seeds = opened.seeds.records
        stages.update(seeds=len(seeds), invalid_seeds=len(opened.seeds.invalid))
        writers = {
            "errors": opened.run.errors,
            "dropped": opened.run.writer(side(output, "dropped")),
            "kept": opened.run.records,
        }
        # 1-2. Encode the seeds and augment the metadata pool (or read the pool a run wrote).
        pool_path = side(output, "pool")
        if pool_path.exists():
            pool = read_pool(pool_path)
            stages["pool"] = {"size": len(pool), "read_from": str(pool_path)}
        else:
            encoded = encode(
                roles["strong"], seeds, config, writers["errors"], unparsable, progress
            )
            stages["encode"] = {
                "asked": len(seeds),
                "labelled": len(encoded),
                "failed": len(seeds) - len(encoded),
            }
            pool, stages["pool"] = augment(encoded, config, metadata_filter)
            write_pool(pool_path, pool, stages["pool"]["from_seeds"])
        if not pool:
            raise DataError(
                f"no seed of {config.seeds} could be labelled with metadata; see {side(output, 'errors')}"
            )
        if not config.pool_only:
            synthesize(pool, roles, config, writers, stages, unparsable, progress)

    def report(opened: PromptedRun, complete: bool, seconds: float) -> dict[str, Any]:
        return build_report(
            opened.output, config, stages, unparsable, opened.roles, complete, seconds
        )

    return prompted_run(
        "codeclm",
        config,
        models={"strong": model_name(str(config.strong)), "target": model_name(str(config.target))},
        specs={
            "strong": str(config.strong),
            "judge": str(config.strong),
            "target": str(config.target),
        },
        sides=("pool", "dropped"),
        work=work,
        report=report,
        count=("kept", "records kept"),
        backends=backends,
        on_progress=on_progress,
    )


def synthesize(
    pool: list[Metadata],
    roles: dict[str, Metered],
    config: CodecLMConfig,
    writers: dict[str, RecordWriter],
    stages: dict[str, Any],
    unparsable: Counter[str],
    progress: Progress,
) -> None:
    """Steps 3-5: decode the instructions, write the rubrics, filter; counts go into ``stages``.

    Without ``num_pairs`` this is one pass: ``num_instructions`` instructions, all filtered.
    With it, the first pass asks for ``num_pairs`` instructions and each top-up pass for the
    missing pairs divided by the share kept so far, its share-out starting where the previous
    pass stopped; the filter takes at most as many instructions at a time as pairs are missing,
    so the output never holds more than ``num_pairs``. It stops when they are kept, when a pass
    writes no new instruction (the pool is spent), or after ``max_top_ups`` passes.
    """
    wanted = config.num_pairs
    budget = wanted or config.num_instructions
    seen: set[str] = set()
    rubrics: dict[str, list[Rubric]] = {}
    passes: list[dict[str, Any]] = []
    offset = 0
    done = writers["kept"].ids | writers["dropped"].ids | writers["errors"].ids
    stages["filter"] = {"chains": 0, "already_done": 0, "not_filtered": 0}
    stopped = "one pass"
    for top_up in range(config.max_top_ups + 1 if wanted else 1):
        # 3. Decode: the basic instructions, the budget shared out over the pool.
        order = pool[offset % len(pool) :] + pool[: offset % len(pool)]
        chains, duplicates = decode(
            roles["strong"], order, config, writers["errors"], unparsable, progress,
            budget=budget, top_up=top_up, seen=seen,
        )  # fmt: skip
        offset += budget
        passes.append(
            {"asked": budget, "written": len(chains), "duplicates": duplicates}
        )  # fmt: skip
        if wanted and not chains:
            stopped = "pool spent"
            break

        # 4. Self-Rubrics for every entry with instructions that has none yet.
        entries = [
            m for m in {c.metadata.key: c.metadata for c in chains}.values() if m.key not in rubrics
        ]
        rubrics.update(
            self_rubrics(roles["strong"], entries, config, writers["errors"], unparsable, progress)
        )

        # 5. Contrastive Filtering, chunk by chunk; finished chains of an earlier run are skipped.
        todo = [c for c in chains if c.id not in done]
        stages["filter"]["chains"] += len(chains)
        stages["filter"]["already_done"] += len(chains) - len(todo)
        left = _filter_chunks(todo, roles, rubrics, config, writers, progress, stages["filter"])
        stages["filter"]["not_filtered"] += left
        if not wanted:
            break
        kept = len(writers["kept"].ids)
        if kept >= wanted:
            stopped = "reached"
            break
        stopped = "top-up limit"
        share = kept / max(1, sum(p["written"] for p in passes))
        budget = min(4 * (wanted - kept), math.ceil((wanted - kept) / max(share, 0.25)))

    stages.update(_synthesis_counts(pool, passes, rubrics))
    if wanted:
        stages["pairs"] = {"wanted": wanted, "kept": len(writers["kept"].ids), "stopped": stopped}


def _filter_chunks(
    todo: list[Chain],
    roles: dict[str, Metered],
    rubrics: dict[str, list[Rubric]],
    config: CodecLMConfig,
    writers: dict[str, RecordWriter],
    progress: Progress,
    counts: dict[str, int],
) -> int:
    """Contrastive Filtering chunk by chunk, never past ``num_pairs`` kept; how many were left."""
    while todo:
        size = config.chunk_size
        if config.num_pairs:
            size = min(size, config.num_pairs - len(writers["kept"].ids))
            if size <= 0:
                break
        chunk, todo = todo[:size], todo[size:]
        contrastive_filter(chunk, roles, rubrics, config, writers)
        progress("filter", counts["chains"] - len(todo), counts["chains"])
    return len(todo)


def _synthesis_counts(
    pool: list[Metadata], passes: list[dict[str, Any]], rubrics: dict[str, list[Rubric]]
) -> dict[str, Any]:
    """The report's ``decode`` and ``rubrics`` stages from the decoding passes and the rubrics."""
    written = sum(p["written"] for p in passes)
    return {
        "decode": {
            "entries": len(pool),
            "budget": passes[0]["asked"],
            "written": written,
            "duplicates": sum(p["duplicates"] for p in passes),
            "shortfall": max(0, sum(p["asked"] for p in passes) - written),
            "passes": passes,
        },
        "rubrics": {
            "entries": len(rubrics),
            "written": sum(bool(r) for r in rubrics.values()),
            "pairs": sum(len(r) for r in rubrics.values()),
        },
    }


def build_report(
    output: Path,
    config: CodecLMConfig,
    stages: dict[str, Any],
    unparsable: Counter[str],
    roles: dict[str, Metered],
    complete: bool,
    seconds: float,
) -> dict[str, Any]:
    """The report of the dataset on disk: counts per stage and round, gaps, failures, cost.

    Record counts, rounds and gaps are read back from the output and its side files, so the
    report of a resumed run covers the whole dataset; ``cost`` is this run's alone.
    """
    unparsable = Counter(unparsable)
    kept = read_records(output, missing_ok=True)
    dropped = read_records(side(output, "dropped"), missing_ok=True)
    errors = read_records(side(output, "errors"), missing_ok=True)
    histories = [r["meta"]["history"] for r in kept] + [
        r["history"] for r in dropped + errors if "history" in r
    ]
    rounds: dict[str, Counter[str]] = {}
    gaps_by_round: dict[str, list[float]] = {}
    for history in histories:
        for step in history:
            key = str(step["iteration"])
            rounds.setdefault(key, Counter())["judged" if "gap" in step else "not_judged"] += 1
            rounds[key][step.get("decision", "failed")] += 1
            unparsable["filter"] += step.get("unparsable", 0)
            if "gap" in step:
                gaps_by_round.setdefault(key, []).append(step["gap"])
    sources = Counter(r["meta"]["source"] for r in kept)
    first = sum(r["meta"]["iteration"] == 1 for r in kept)
    return {
        "complete": complete,
        "seconds": round(seconds, 2),
        "gap_threshold": config.gap_threshold,
        "stages": stages,
        "rounds": {k: dict(v) for k, v in sorted(rounds.items(), key=lambda kv: int(kv[0]))},
        "records": {
            "kept": len(kept),
            "kept_strong": sources["strong"],
            "kept_target": sources["target"],
            "kept_in_first_round": first,
            "first_round_share": round(first / len(kept), 4) if kept else None,
            "dropped": len(dropped),
            "errors": len(errors),
            "errors_by_stage": dict(Counter(e.get("stage", "?") for e in errors)),
        },
        "gaps": {
            "all": distribution([g for gs in gaps_by_round.values() for g in gs]),
            "kept": distribution([r["meta"]["gap"] for r in kept]),
            "by_round": {
                k: distribution(v)
                for k, v in sorted(gaps_by_round.items(), key=lambda kv: int(kv[0]))
            },
        },
        "unparsable_replies": dict(unparsable),
        "cost": {role: meter.report() for role, meter in roles.items()},
        "files": {
            "records": str(output),
            "dropped": str(side(output, "dropped")),
            "errors": str(side(output, "errors")),
            "pool": str(side(output, "pool")),
        },
    }
