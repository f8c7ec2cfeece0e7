"""The run manifest: how a dataset was made, next to the dataset.

``<output>.manifest.json`` holds the resolved config, the codit version, the models' ids,
revisions and fingerprints, and one entry per run (start, end, counts, throughput). It is
rewritten atomically (temporary file + rename), so it is never torn. A rerun into the same
output checks that the settings that shape the records are unchanged, so one file never mixes
records made in different ways.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

from codit import __version__
from codit.errors import ConfigError


def manifest_path(output: Path) -> Path:
    return (
        output.with_name(output.name + ".manifest.json")
        if output.suffix != ".jsonl"
        else output.with_suffix(".manifest.json")
    )


def read_manifest(output: Path) -> dict[str, Any] | None:
    path = manifest_path(output)
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        return None


def write_manifest(output: Path, manifest: dict[str, Any]) -> Path:
    path = manifest_path(output)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False, default=str) + "\n")
    os.replace(tmp, path)
    return path


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
            "rerun with the same settings to resume, or write to another --output"
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
