"""What every experiment's run directory shares: its manifest, atomic JSON, threads, the machine.

An experiment writes ``experiment.json`` into its run directory: the settings that shape the
results (a rerun with other settings is refused, so a directory never mixes two experiments)
and one entry per run with its wall-clock and CPU seconds, so resumed runs add up.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

MANIFEST = "experiment.json"


def write_json(path: Path, value: dict[str, Any]) -> None:
    """Write ``value`` to ``path`` atomically (a crash leaves the old file or the new one)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(value, indent=2) + "\n")
    os.replace(tmp, path)


def write_lines(path: Path, rows: list[dict[str, Any]]) -> None:
    """Write ``rows`` as JSON lines to ``path`` atomically."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    os.replace(tmp, path)


def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``, or None when the file does not exist."""
    return json.loads(path.read_text()) if path.is_file() else None


def open_run(
    out: Path, settings: dict[str, Any], config: dict[str, Any], seeds: int
) -> dict[str, Any]:
    """Create or resume the run directory ``out`` and record this run in its manifest.

    Args:
        out: the run directory.
        settings: what shapes the results; must equal the previous runs' settings.
        config: every setting, for the record.
        seeds: the number of seeds this run asks for.

    Returns:
        The manifest, its last ``runs`` entry being this run.

    Raises:
        ConfigError: ``out`` was made with other settings.
    """
    from codit.io.manifest import check_same_settings

    out.mkdir(parents=True, exist_ok=True)
    manifest = read_json(out / MANIFEST)
    check_same_settings(out, manifest, settings)
    manifest = manifest or {"runs": []}
    manifest.update({"settings": settings, "config": config})
    manifest["runs"].append({"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "seeds": seeds})
    write_json(out / MANIFEST, manifest)
    return manifest


def close_run(out: Path, manifest: dict[str, Any], seconds: dict[str, float]) -> None:
    """Record this run's seconds per stage in the manifest."""
    manifest["runs"][-1]["seconds"] = {k: round(v, 1) for k, v in seconds.items()}
    write_json(out / MANIFEST, manifest)


def total_seconds(runs: list[dict[str, Any]]) -> dict[str, float]:
    """Seconds per stage summed over every run into the directory (resumed runs add up)."""
    return {
        k: round(sum(r.get("seconds", {}).get(k, 0.0) for r in runs), 1)
        for k in runs[-1]["seconds"]
    }


def machine_problems(threads: int, device: str) -> list[str]:
    """What is wrong with an experiment's ``--threads`` and ``--device`` (empty when nothing)."""
    problems = []
    if threads < 0:
        problems.append(f"--threads must be >= 0 (0 = torch's default), got {threads}")
    if device not in ("auto", "cpu", "cuda") and not device.startswith("cuda:"):
        problems.append(f"--device must be auto, cpu, cuda or cuda:N, got {device!r}")
    return problems


def provenance(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The machine, and the wall-clock and CPU seconds of every run into the directory."""
    return {"machine": machine(), "runs": runs, "seconds": total_seconds(runs)}


def write_results(out: Path, results: dict[str, Any], table: Any, plot: Any) -> None:
    """``results.json``, ``results.md`` (``table(results)``) and ``results.png`` (``plot``)."""
    write_json(out / "results.json", results)
    (out / "results.md").write_text(table(results) + "\n")
    plot(results, out / "results.png")


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Use ``n`` torch CPU threads (0: leave as is) and restore the previous count after."""
    import torch

    previous = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def machine() -> dict[str, Any]:
    """Where the numbers were measured."""
    import torch

    return {
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.is_available(),
        "load_average_1min_at_end": round(os.getloadavg()[0], 2),
    }


def tiny_build_facts(instruct: str) -> dict[str, Any]:
    """The ``build.json`` config of a tiny pair (its world seed and number of conversations).

    Falls back to the default build (with a warning) when ``instruct`` has no ``build.json``
    beside it.
    """
    from codit.config import to_dict
    from codit.models.loading import resolve_model_path
    from codit.tiny.build import BuildConfig

    path = Path(resolve_model_path(instruct)).parent / "build.json"
    facts = to_dict(BuildConfig())
    if path.is_file():
        facts.update(json.loads(path.read_text()).get("config", {}))
    else:
        log.warning("no %s; assuming the default tiny world (seed %d)", path, facts["seed"])
    return facts
