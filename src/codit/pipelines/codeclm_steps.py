"""CodecLM's writing steps, 1 to 4 of ``codeclm.py``: encode, augment, decode, Self-Rubrics.

Each step is one function that asks the strong model in chunks (``chunk_size`` requests at a
time, so progress shows and a crash loses little), parses every reply with
``codeclm_parse``, re-asks the unparsable ones a bounded number of times, and writes what still
fails to the errors file with the raw replies. ``augment`` and ``budgets`` are pure.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codit.backends.base import GenerationParams
from codit.backends.cost import Metered
from codit.io.atomic import write_lines
from codit.io.jsonl import read_records
from codit.io.prompts import PromptRecord
from codit.io.records import RecordWriter
from codit.pipelines.codeclm_parse import (
    INSTRUCTIONS_SCHEMA,
    METADATA_SCHEMA,
    RUBRICS_SCHEMA,
    Metadata,
    Rubric,
    parse_instructions,
    parse_metadata,
    parse_rubrics,
)
from codit.pipelines.llm import ask, user
from codit.pipelines.outputs import instruction_of
from codit.pipelines.templates import load_template, render

if TYPE_CHECKING:
    from codit.pipelines.codeclm_config import CodecLMConfig

Progress = Callable[[str, int, int], None]  # (stage, done, total)


@dataclass
class Chain:
    """One instruction on its way through Contrastive Filtering (mutable while in flight)."""

    id: str
    metadata: Metadata
    basic: str
    instruction: str
    history: list[dict[str, Any]] = field(default_factory=list)


def generation_params(
    config: CodecLMConfig, schema: dict[str, Any] | None = None
) -> GenerationParams:
    """The sampling settings of a generation step, with its reply schema."""
    return GenerationParams(
        max_new_tokens=config.max_new_tokens,
        temperature=config.temperature,
        seed=config.seed,
        json_schema=schema,
    )


def encode(
    strong: Metered,
    seeds: list[PromptRecord],
    config: CodecLMConfig,
    errors: RecordWriter,
    unparsable: Counter[str],
    progress: Progress,
) -> list[Metadata]:
    """Step 1: one use case and at most ``max_skills`` skills per seed instruction."""
    template = load_template("codeclm_encode")
    params = generation_params(config, METADATA_SCHEMA)
    found = []
    for start in range(0, len(seeds), config.chunk_size):
        chunk = seeds[start : start + config.chunk_size]
        prompts = [
            user(render(template, instruction=instruction_of(s), max_skills=config.max_skills))
            for s in chunk
        ]
        answers = ask(
            strong,
            prompts,
            params,
            lambda text, i: parse_metadata(text, config.max_skills),
            config.parse_retries,
            config.reask_temperature,
        )
        for seed, answer in zip(chunk, answers, strict=True):
            unparsable["encode"] += answer.unparsable
            if answer.value is not None:
                found.append(answer.value)
            else:
                errors.write(
                    {
                        "id": f"encode:{seed.id}",
                        "stage": "encode",
                        "error": answer.error,
                        "instruction": instruction_of(seed),
                        "replies": list(answer.replies),
                    }
                )
        progress("encode", start + len(chunk), len(seeds))
    return found


def augment(
    encoded: list[Metadata],
    config: CodecLMConfig,
    keep: Callable[[Metadata], bool] | None = None,
) -> tuple[list[Metadata], dict[str, Any]]:
    """Step 2: the seeds' metadata plus sampled combinations, up to ``pool_size`` entries.

    A sampled entry is one use case of the seeds and ``min..max_combination_skills`` skills drawn
    without replacement from all the seeds' skills; repeats and entries ``keep`` refuses are not
    added. Seeds with more distinct metadata than ``pool_size`` keep all of theirs.
    """
    pool = list({m.key: m for m in encoded}.values())
    from_seeds = len(pool)
    use_cases = list(dict.fromkeys(m.use_case for m in encoded))
    skills = list(dict.fromkeys(s for m in encoded for s in m.skills))
    rng = random.Random(f"{config.seed}:pool")
    keys = {m.key for m in pool}
    refused = 0
    attempts = 0
    while (
        use_cases and skills and len(pool) < config.pool_size and attempts < 50 * config.pool_size
    ):
        attempts += 1
        low = min(config.min_combination_skills, len(skills))
        k = rng.randint(low, min(config.max_combination_skills, len(skills)))
        entry = Metadata(rng.choice(use_cases), tuple(rng.sample(skills, k)))
        if entry.key in keys:
            continue
        keys.add(entry.key)
        if keep is not None and not keep(entry):
            refused += 1
            continue
        pool.append(entry)
    stats = {
        "size": len(pool),
        "from_seeds": from_seeds,
        "sampled": len(pool) - from_seeds,
        "refused_by_filter": refused,
        "use_cases": len(use_cases),
        "skills": len(skills),
    }
    return pool, stats


def budgets(total: int, entries: int) -> list[int]:
    """Instructions per entry: ``total`` shared out as evenly as possible, earlier entries first."""
    base, extra = divmod(total, entries)
    return [base + (i < extra) for i in range(entries)]


def decode(
    strong: Metered,
    pool: list[Metadata],
    config: CodecLMConfig,
    errors: RecordWriter,
    unparsable: Counter[str],
    progress: Progress,
    budget: int | None = None,
    top_up: int = 0,
    seen: set[str] | None = None,
) -> tuple[list[Chain], int]:
    """Step 3: each entry's share of the budget as basic instructions, with stable ids.

    Args:
        budget: instructions to write in all (default ``num_instructions``).
        top_up: 0 for the first pass over the pool; a pass ``k`` > 0 (``--num-pairs`` asking
            for more) samples with its own seed and names its instructions ``KEY-pK-N``.
        seen: normalized instructions already written, updated in place (repeats are left out).

    Returns the chains and how many instructions repeated one already written (left out).
    """
    template = load_template("codeclm_decode")
    params = generation_params(config, INSTRUCTIONS_SCHEMA)
    total = config.num_instructions if budget is None else budget
    if top_up:
        # the re-ask seeds of ``ask`` are seed+1, seed+2, ...: keep clear of them
        params = replace(params, seed=config.seed + 1000 * top_up)
    wanted = [(m, n) for m, n in zip(pool, budgets(total, len(pool)), strict=True) if n]
    prefix = f"p{top_up}-" if top_up else ""
    chains: list[Chain] = []
    seen = set() if seen is None else seen  # another entry may write the same: keep the first
    duplicates = 0
    for start in range(0, len(wanted), config.chunk_size):
        chunk = wanted[start : start + config.chunk_size]
        prompts = [
            user(render(template, count=n, use_case=m.use_case, skills=", ".join(m.skills)))
            for m, n in chunk
        ]
        answers = ask(
            strong,
            prompts,
            params,
            lambda text, i: parse_instructions(text),
            config.parse_retries,
            config.reask_temperature,
        )
        for (metadata, n), answer in zip(chunk, answers, strict=True):
            unparsable["decode"] += answer.unparsable
            if answer.value is None:
                errors.write(
                    {
                        "id": f"decode:{metadata.key}",
                        "stage": "decode",
                        "error": answer.error,
                        "metadata": metadata.to_dict(),
                        "replies": list(answer.replies),
                    }
                )
                continue
            for k, text in enumerate(answer.value[:n]):
                if " ".join(text.lower().split()) in seen:
                    duplicates += 1
                    continue
                seen.add(" ".join(text.lower().split()))
                chains.append(Chain(f"{metadata.key}-{prefix}{k}", metadata, text, text))
        progress("decode", start + len(chunk), len(wanted))
    return chains, duplicates


def self_rubrics(
    strong: Metered,
    entries: list[Metadata],
    config: CodecLMConfig,
    errors: RecordWriter,
    unparsable: Counter[str],
    progress: Progress,
) -> dict[str, list[Rubric]]:
    """Step 4: up to ``num_rubrics`` rubric/action pairs per entry (empty when none parsed)."""
    template = load_template("codeclm_rubrics")
    params = generation_params(config, RUBRICS_SCHEMA)
    found: dict[str, list[Rubric]] = {}
    for start in range(0, len(entries), config.chunk_size):
        chunk = entries[start : start + config.chunk_size]
        prompts = [
            user(
                render(
                    template,
                    count=config.num_rubrics,
                    use_case=m.use_case,
                    skills=", ".join(m.skills),
                )
            )
            for m in chunk
        ]
        answers = ask(
            strong,
            prompts,
            params,
            lambda text, i: parse_rubrics(text),
            config.parse_retries,
            config.reask_temperature,
        )
        for metadata, answer in zip(chunk, answers, strict=True):
            unparsable["rubrics"] += answer.unparsable
            found[metadata.key] = (answer.value or [])[: config.num_rubrics]
            if answer.value is None:
                errors.write(
                    {
                        "id": f"rubrics:{metadata.key}",
                        "stage": "rubrics",
                        "error": answer.error,
                        "metadata": metadata.to_dict(),
                        "replies": list(answer.replies),
                    }
                )
        progress("rubrics", start + len(chunk), len(entries))
    return found


def write_pool(path: Path, pool: list[Metadata], from_seeds: int) -> None:
    """The pool in one atomic write, so a rerun never reads half of it."""
    write_lines(
        path,
        [
            {"id": m.key, **m.to_dict(), "origin": "seed" if i < from_seeds else "sampled"}
            for i, m in enumerate(pool)
        ],
    )


def read_pool(path: Path) -> list[Metadata]:
    """The metadata pool a run wrote (perhaps edited by hand since)."""
    return [
        Metadata(r["use_case"], tuple(r["skills"])) for r in read_records(path, missing_ok=True)
    ]
