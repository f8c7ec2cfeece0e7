"""The skeleton every prompted pipeline shares: seeds in, roles open, work, report, resume.

``prompted_run`` is what ``run_codeclm`` and ``run_ecd`` have in common, in the order it
happens: read and check the seeds, take the output (lock, manifest, writers that skip ids
already written), record the models, open one metered backend per role (with the response
cache beside the output), run the pipeline's own ``work``, and always (also when the work was
stopped or failed) write the report of the dataset on disk. The pipeline keeps its steps and
its report; the skeleton keeps the order and the bookkeeping.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codit.backends.base import TextBackend
from codit.backends.cost import Metered
from codit.io.atomic import write_json
from codit.io.prompts import PromptSet
from codit.io.rundir import Run
from codit.pipelines.llm import open_roles
from codit.pipelines.outputs import Progress, read_seed_set, side, stop_checking, with_cache

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PromptedRun:
    """What a pipeline's work and report get: the open run and everything it opened."""

    run: Run
    output: Path
    seeds: PromptSet
    roles: dict[str, Metered]
    progress: Progress


def prompted_run(
    command: str,
    config: Any,
    *,
    models: dict[str, str],
    specs: dict[str, str],
    sides: tuple[str, ...],
    work: Callable[[PromptedRun], None],
    report: Callable[[PromptedRun, bool, float], dict[str, Any]],
    count: tuple[str, str],
    backends: dict[str, TextBackend] | None = None,
    on_progress: Progress | None = None,
) -> dict[str, Any]:
    """Run ``work`` into ``config.output`` and return (and write) the report.

    Args:
        command: the command's name, for the manifest and the log.
        config: the pipeline's settings (``output``, ``seeds`` and the seed fields,
            ``backend``, ``output_options`` and a ``settings()`` method).
        models: role -> model name, for the manifest.
        specs: role -> backend spec; roles with the same spec share one backend.
        sides: the side files written with records (``OUTPUT.<side>.jsonl``).
        work: the pipeline's steps.
        report: (run, complete, seconds) -> the report of the dataset on disk.
        count: (key of ``report["records"]`` kept in the manifest entry, its noun for the log).
        backends: role -> a ready backend instead of its spec (tests).
        on_progress: called with (stage, done, total), for a progress bar.
    """
    started = time.time()
    output = Path(str(config.output))
    seeds = read_seed_set(config)
    run = Run(
        output,
        command,
        config.settings(),
        config,
        options=config.output_options,
        records=(output, *(side(output, name) for name in sides)),
    )
    key, noun = count
    with run:
        run.skip(seeds.invalid)
        run.manifest["models"] = models
        roles = open_roles(specs, with_cache(config.backend, output), backends)
        opened = PromptedRun(run, output, seeds, roles, stop_checking(run, on_progress))
        complete = False
        try:
            work(opened)
            complete = True
        finally:
            written = report(opened, complete, time.time() - started)
            write_json(side(output, "report", ".json"), written)
            run.entry[key] = written["records"][key]
        run.finish()
    log.info(
        "%s: %d %s in %s (%s)",
        command,
        written["records"][key],
        noun,
        output,
        "complete" if complete else "stopped early; rerun to resume",
    )
    return written
