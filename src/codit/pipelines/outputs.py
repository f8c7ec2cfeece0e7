"""The files of a prompted run: its seeds in, its records out, and how a rerun resumes.

A run writing ``data/out.jsonl`` keeps everything beside it:

    data/out.jsonl               the records (append-only)
    data/out.<name>.jsonl        side records: errors, dropped, pool, sft, chains (append-only)
    data/out.cache.sqlite        the response cache, unless ``--cache`` names another file
    data/out.manifest.json       settings, codit version, models, one entry per run
    data/out.report.json         the report of the dataset on disk

The run itself (lock, manifest, writers, stops) is ``codit.io.rundir.Run``; its writers append a
record only if its id is not in the file yet, so a rerun that recomputes finished work (from the
cache) writes nothing twice.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from codit.backends.spec import BackendConfig, parse_spec
from codit.errors import ConfigError
from codit.io.prompts import PromptRecord, PromptSet, read_prompt_set
from codit.io.rundir import Run

Progress = Callable[[str, int, int], None]


def read_seed_set(config: Any) -> PromptSet:
    """The seeds a prompted pipeline's config names (``seeds``, ``prompt_field``, ``id_field``,
    ``limit``), checked like every input; bad rows come back with ``--skip-invalid``."""
    return read_prompt_set(
        str(config.seeds),
        config.prompt_field,
        config.id_field,
        config.limit,
        config.output_options.skip_invalid,
    )


def instruction_of(seed: PromptRecord) -> str:
    """The instruction of a seed: its last user turn."""
    return next(m["content"] for m in reversed(seed.messages) if m["role"] == "user")


def side(output: Path, name: str, suffix: str = ".jsonl") -> Path:
    """The side file ``name`` of an output: ``out.jsonl`` -> ``out.<name><suffix>``."""
    return output.with_name(f"{output.stem}.{name}{suffix}")


def check_output(output: str | None, problems: list[str]) -> None:
    """Collect the problems of an ``--output`` value (for a config's ``__post_init__``)."""
    if not output:
        problems.append("--output is required")
    elif not output.endswith(".jsonl"):
        problems.append(f"--output must be a .jsonl file, not {output!r}")


def check_spec(flag: str, spec: str | None, problems: list[str], required: bool = True) -> None:
    """Collect the problems of a backend spec flag."""
    if not spec:
        if required:
            problems.append(f"{flag} is required (local:MODEL or openai:MODEL@URL)")
        return
    try:
        parse_spec(spec)
    except ConfigError as err:
        problems.append(f"{flag}: {err}")


def with_cache(config: BackendConfig, output: Path) -> BackendConfig:
    """The backend settings, with the response cache beside the output unless one is named."""
    if config.cache:
        return config
    return dataclasses.replace(config, cache=str(side(output, "cache", ".sqlite")))


def model_name(spec: str) -> str:
    """``kind:model`` of a spec: the same model behind another address makes the same records."""
    parsed = parse_spec(spec)
    return f"{parsed.kind}:{parsed.model}"


def stop_checking(run: Run, on_progress: Progress | None) -> Progress:
    """A progress callback that also ends the run after SIGINT/SIGTERM.

    The stages report progress after every chunk of finished work, so this is where a prompted
    run stops admitting: the chunk in flight is written, the next one never starts.
    """

    def progress(stage: str, done: int, total: int) -> None:
        if on_progress is not None:
            on_progress(stage, done, total)
        run.check_stop()

    return progress


def distribution(values: list[float]) -> dict[str, Any]:
    """Count, mean, extremes, quartiles and a histogram (exact values as keys) of numbers."""
    if not values:
        return {"count": 0}
    ordered = sorted(values)
    quartiles = (
        statistics.quantiles(ordered, n=4, method="inclusive")
        if len(ordered) > 1
        else [ordered[0]] * 3
    )
    histogram = Counter(f"{v:g}" for v in ordered)
    return {
        "count": len(ordered),
        "mean": round(statistics.fmean(ordered), 4),
        "min": ordered[0],
        "q1": round(quartiles[0], 4),
        "median": round(quartiles[1], 4),
        "q3": round(quartiles[2], 4),
        "max": ordered[-1],
        "histogram": dict(sorted(histogram.items(), key=lambda kv: float(kv[0]))),
    }
