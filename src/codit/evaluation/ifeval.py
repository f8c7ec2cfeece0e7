"""IFEval on a file: score responses against the IFEval prompts, offline, in seconds.

IFEval (Zhou et al. 2023, arXiv:2311.07911) gives 541 prompts, each with one to three verifiable
instructions. A response is scored per instruction (instruction level) and per prompt (all of its
instructions followed), in strict mode and in loose mode (see ``checks.loose_variants``).

The responses file may be IFEval's own format (``prompt``, ``response``), the same with a ``key``
or ``id``, TRL's ``prompt``/``completion``, or codit's generation records (``id``, ``messages``
ending with the assistant's turn). Responses are matched to prompts by key/id when it names an
IFEval key, else by prompt text. A prompt without a response is counted as failing every
instruction and reported as missing, never skipped.

``run_ifeval`` reads top to bottom: load the prompts, generate the responses if asked, score
them, write the report. Each concern has its module: ``ifeval_config`` (the settings),
``ifeval_data`` (where the prompts come from, reading them), ``ifeval_generate`` (answers through
a ``TextBackend``, or ``codit generate`` on Ray workers), ``ifeval_scoring`` (verdicts and
accuracies), ``ifeval_report`` (table, chart, files). Their public names are importable from
here too. The CLI (``codit eval ifeval``) only parses flags.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from codit import __version__
from codit.backends.base import GenerationParams
from codit.backends.spec import BackendConfig, open_backend
from codit.config import to_dict
from codit.distributed.config import RayConfig
from codit.evaluation.ifeval_config import IFEvalConfig
from codit.evaluation.ifeval_data import IFEvalPrompt, load_prompts
from codit.evaluation.ifeval_generate import (
    backend_spec,
    generate_on_ray,
    generate_responses,
    model_settings,
)
from codit.evaluation.ifeval_report import format_table, plot_per_instruction, write_report
from codit.evaluation.ifeval_scoring import Matching, Verdict, evaluate, match_responses, summarize
from codit.evaluation.responses import load_responses
from codit.io.lock import OutputLock
from codit.io.rundir import Run

__all__ = [
    "IFEvalConfig",
    "IFEvalPrompt",
    "Matching",
    "Verdict",
    "backend_spec",
    "evaluate",
    "format_table",
    "generate_on_ray",
    "generate_responses",
    "load_prompts",
    "match_responses",
    "model_settings",
    "plot_per_instruction",
    "run_ifeval",
    "summarize",
    "write_report",
]


def run_ifeval(
    config: IFEvalConfig,
    backend_config: BackendConfig | None = None,
    progress: Callable[[int], None] | None = None,
    on_generate: Callable[[int], None] | None = None,
    distributed: RayConfig | None = None,
) -> tuple[dict[str, Any], dict[str, Path]]:
    """Score a responses file (generating it first with ``config.model``) and write the report.

    Args:
        config: what to evaluate and where to write.
        backend_config: how to reach the model, with ``config.model``.
        progress: called with the number of prompts answered after each chunk.
        on_generate: called once with the number of prompts still to answer.
        distributed: with ``ray=True``, a local ``config.model`` answers on Ray workers
            (``generate_on_ray``).

    Returns:
        The metrics (also in ``metrics.json``) and the paths of the files written.
    """
    start = time.time()
    from codit.evaluation.ifeval_data import resolve_input_data

    input_path = resolve_input_data(config.input_data)
    prompts = load_prompts(input_path)[: config.limit]
    output = Path(str(config.output))
    with OutputLock(output, "eval ifeval"):  # one run per report folder
        return _score(
            config,
            prompts,
            input_path,
            output,
            start,
            backend_config,
            progress,
            on_generate,
            distributed,
        )


def _score(
    config: IFEvalConfig,
    prompts: list[IFEvalPrompt],
    input_path: Path,
    output: Path,
    start: float,
    backend_config: BackendConfig | None,
    progress: Callable[[int], None] | None,
    on_generate: Callable[[int], None] | None,
    distributed: RayConfig | None,
) -> tuple[dict[str, Any], dict[str, Path]]:
    """Generate the responses if asked, score them and write the report (under the lock)."""
    backend_config = backend_config or BackendConfig()
    if config.model is not None and distributed is not None and distributed.ray:
        responses_path = generate_on_ray(
            prompts, config, backend_config, distributed, progress, on_generate
        )
    elif config.model is not None:
        responses_path = output / "responses.jsonl"
        backend = open_backend(backend_spec(config.model), backend_config)
        params = GenerationParams(max_new_tokens=config.max_new_tokens, temperature=0.0)
        settings = {"model": model_settings(config.model), "max_new_tokens": config.max_new_tokens}
        with Run(
            responses_path,
            "eval ifeval",
            settings,
            config,
            options=config.output_options,
            errors=output / "errors.jsonl",
            retry_errors=config.retry_errors,
        ) as answers:
            if on_generate is not None:
                done = answers.done_ids()
                on_generate(sum(str(p.key) not in done for p in prompts))
            written = generate_responses(
                prompts,
                backend,
                params,
                answers,
                chunk_size=4 * backend_config.batch_size,
                progress=progress,
            )
            answers.finish(written=written)
    else:
        responses_path = Path(str(config.responses))
    matching = match_responses(prompts, load_responses(responses_path))
    verdicts = evaluate(prompts, matching.by_key)
    metrics = summarize(verdicts)
    metrics.update(
        {"unmatched_responses": matching.unmatched, "duplicate_responses": matching.duplicates}
    )
    run = {
        "codit_version": __version__,
        "config": to_dict(config),
        "backend": to_dict(backend_config) if config.model is not None else None,
        "input_data": str(input_path),
        "responses": str(responses_path),
        "seconds": round(time.time() - start, 3),
    }
    return metrics, write_report(verdicts, metrics, output, run)
