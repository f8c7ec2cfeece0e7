"""What every experiment's run directory shares: its manifest, atomic JSON, threads, the machine.

An experiment's run directory is one ``codit.io.rundir.Run``: locked while a run writes it,
with ``experiment.json`` as its manifest: the settings that shape the results (a rerun with other
settings is refused, so a directory never mixes two experiments) and one entry per run with its
wall-clock and CPU seconds, so resumed runs add up.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from codit.io import signals
from codit.io.atomic import write_json, write_text
from codit.io.rundir import Run

log = logging.getLogger(__name__)

MANIFEST = "experiment.json"
Progress = Callable[[str, int, int], None]


def open_run(out: Path, settings: dict[str, Any], config: Any, seeds: int) -> Run:
    """The ``Run`` of the experiment directory ``out`` (enter it to lock and resume).

    Args:
        out: the run directory; its manifest is ``experiment.json``.
        settings: what shapes the results; must equal the previous runs' settings.
        config: the experiment's config, for the record.
        seeds: the number of seeds this run asks for.

    Entering raises ``ConfigError`` when ``out`` was made with other settings and
    ``OutputLocked`` when another run is writing it.
    """
    run = Run(
        out,
        "experiment",
        settings,
        config,
        manifest=out / MANIFEST,
        errors=out / "errors.jsonl",
        records=(),
    )
    run.entry_defaults = {"seeds": seeds}
    return run


def close_run(run: Run, seconds: dict[str, float]) -> None:
    """Record this run's seconds per stage in the manifest and mark it complete."""
    run.finish(seconds={k: round(v, 1) for k, v in seconds.items()})
    run.write_manifest()


def stop_checking(report: Progress) -> Progress:
    """``report``, then end the run if SIGINT/SIGTERM asked (after the stage item in flight)."""

    def progress(stage: str, done: int, total: int) -> None:
        report(stage, done, total)
        signals.check("finished stages are kept; rerun the same command to resume")

    return progress


def total_seconds(runs: list[dict[str, Any]]) -> dict[str, float]:
    """Seconds per stage summed over every run into the directory (resumed runs add up)."""
    return {
        k: round(sum(r.get("seconds", {}).get(k, 0.0) for r in runs), 1)
        for k in runs[-1]["seconds"]
    }


def provenance(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The machine, and the wall-clock and CPU seconds of every run into the directory."""
    return {"machine": machine(), "runs": runs, "seconds": total_seconds(runs)}


def write_results(out: Path, results: dict[str, Any], table: Any, plot: Any) -> None:
    """``results.json``, ``results.md`` (``table(results)``) and ``results.png`` (``plot``)."""
    write_json(out / "results.json", results)
    write_text(out / "results.md", table(results) + "\n")
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
