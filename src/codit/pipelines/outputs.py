"""The files of a prompted run: its seeds in, its records out, and how a rerun resumes.

A run writing ``data/out.jsonl`` keeps everything beside it:

    data/out.jsonl               the records (append-only)
    data/out.<name>.jsonl        side records: errors, dropped, pool, sft, chains (append-only)
    data/out.cache.sqlite        the response cache, unless ``--cache`` names another file
    data/out.manifest.json       settings, codit version, models, one entry per run
    data/out.report.json         the report of the dataset on disk

Resuming is the writers' business: ``UniqueWriter`` appends a record only if its id is not in the
file yet, so a rerun that recomputes finished work (from the cache) writes nothing twice.
"""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
import time
from collections import Counter
from pathlib import Path
from typing import Any

from codit import __version__
from codit.backends.spec import BackendConfig, parse_spec
from codit.config import to_dict
from codit.errors import ConfigError, DataError
from codit.io.jsonl import Appender, iter_records, read_ids, repair_tail
from codit.io.manifest import check_same_settings, read_manifest, write_manifest
from codit.io.prompts import PromptRecord, read_prompts


def read_seeds(
    path: str, prompt_field: str | None, id_field: str | None, limit: int | None
) -> list[PromptRecord]:
    """The seed instructions (any format ``codit generate`` reads), with unique ids.

    Raises:
        DataError: the file is missing or malformed, or two seeds share an id.
    """
    seeds = read_prompts(path, prompt_field, id_field, limit)
    seen: dict[str, int] = {}
    for seed in seeds:
        if seed.id in seen:
            raise DataError(
                f"{path}, line {seed.line}: id {seed.id!r} already appears on line"
                f" {seen[seed.id]}; ids must be unique"
            )
        seen[seed.id] = seed.line
    return seeds


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


class UniqueWriter:
    """Appends records whose id the file does not hold yet; a torn last line is cut first.

    Args:
        path: the JSONL file.
    """

    def __init__(self, path: Path):
        self.path = path
        repair_tail(path)
        self.ids = read_ids(path)
        self._out = Appender(path)

    def write(self, record: dict[str, Any]) -> bool:
        """Append ``record`` unless its id is already there; returns whether it was written."""
        if str(record["id"]) in self.ids:
            return False
        self._out.write(record)
        self.ids.add(str(record["id"]))
        return True

    def close(self) -> None:
        self._out.close()


def start_run(
    output: Path, command: str, config: Any, settings: dict[str, Any], models: dict[str, str]
) -> dict[str, Any]:
    """Check that a rerun keeps the record-shaping settings, and add this run to the manifest.

    Raises:
        ConfigError: the output was made with other settings.
    """
    output.parent.mkdir(parents=True, exist_ok=True)
    previous = read_manifest(output)
    check_same_settings(output, previous, settings)
    manifest = {
        "codit_version": __version__,
        "command": command,
        "settings": settings,
        "config": to_dict(config),
        "models": models,
        "runs": (previous or {}).get("runs", [])
        + [{"started": _now(), "codit_version": __version__}],
    }
    write_manifest(output, manifest)
    return manifest


def finish_run(output: Path, manifest: dict[str, Any], outcome: dict[str, Any]) -> None:
    """Record the end of this run (complete or not) in the manifest."""
    manifest["runs"][-1].update({"ended": _now(), **outcome})
    write_manifest(output, manifest)


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write a JSON file atomically (temporary file + rename)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def read_records(path: Path) -> list[dict[str, Any]]:
    """The records of a JSONL side file; none if it does not exist."""
    return iter_records(path) if path.exists() else []


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


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
