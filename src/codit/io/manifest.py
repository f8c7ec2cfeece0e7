"""The run manifest: how a dataset was made, next to the dataset.

``<output>.manifest.json`` holds the resolved config, the codit version, the models' ids,
revisions and fingerprints, and one entry per run (start, end, counts, throughput). It is
rewritten atomically, so it is never torn. A rerun into the same output checks that the
settings that shape the records are unchanged, so one file never mixes records made in
different ways; a manifest whose records are gone (deleted, or empty) is stale and does not
count (``is_stale``).
"""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

from codit import __version__
from codit.errors import ConfigError
from codit.io.atomic import write_json


def manifest_path(output: Path) -> Path:
    """``out.jsonl`` -> ``out.manifest.json``; any other name gets ``.manifest.json`` added."""
    output = Path(output)
    return (
        output.with_name(output.name + ".manifest.json")
        if output.suffix != ".jsonl"
        else output.with_suffix(".manifest.json")
    )


def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``; None when it is missing or not a JSON object."""
    try:
        value = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def read_manifest(output: Path) -> dict[str, Any] | None:
    return read_json(manifest_path(output))


def write_manifest(output: Path, manifest: dict[str, Any]) -> Path:
    path = manifest_path(output)
    write_json(path, manifest)
    return path


def is_stale(records: tuple[Path, ...]) -> bool:
    """True when every records file of a run is missing or empty (the user deleted them)."""
    return bool(records) and all(not p.is_file() or p.stat().st_size == 0 for p in records)


def check_same_settings(
    output: Path, previous: dict[str, Any] | None, settings: dict[str, Any]
) -> None:
    """Refuse to append to an output made with other record-shaping settings."""
    if not previous:
        return
    before = previous.get("settings", {})
    changed = [k for k in sorted(set(before) | set(settings)) if before.get(k) != settings.get(k)]
    if changed:
        k = changed[0]
        raise ConfigError(
            f"{output} was made with {k}={before.get(k)!r}, not {settings.get(k)!r}; "
            "rerun with the same settings to resume, delete it to start over, "
            "or write to another --output"
        )


def environment() -> dict[str, Any]:
    import torch
    import transformers

    return {
        "codit": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "platform": platform.platform(),
    }
