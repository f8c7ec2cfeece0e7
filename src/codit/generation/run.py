"""``codit generate`` as a function: prompts file in, resumable TRL-format dataset out.

Read top to bottom: validate the config and every input line, skip ids already written (or
already failed), load and check the model pair, decode with the engine, append each record
the moment it finishes, and keep the manifest up to date. A killed run loses at most the rows
in flight; rerunning the same command completes the dataset with every id exactly once.
The input is read twice, a row at a time (``codit.generation.inputs``): checked and counted
before any model loads, then streamed to the engine, so memory does not grow with it.
With ``--ray`` the decoding runs on a pool of Ray workers (``codit.distributed.ray_generate``)
and everything else, the writing included, stays here.

Output record (TRL conversational format)::

    {"id": ..., "messages": [{"role": "user", ...}, {"role": "assistant", ...}], "meta": {...}}
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from codit.decoding.engine import Completion
from codit.errors import DataError, require
from codit.generation.completions import local_completions
from codit.generation.config import GenerateConfig
from codit.generation.inputs import (
    InFlight,
    check_same_revision,
    pending_prompts,
    plan_inputs,
    source_entry,
)
from codit.generation.samples import sample_meta
from codit.io.jsonl import read_records
from codit.io.manifest import environment
from codit.io.prompts import PromptRecord
from codit.io.rundir import Run, errors_path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunSummary:
    """What a run did, for the CLI and for callers."""

    output: Path
    errors_path: Path
    manifest_path: Path
    inputs: int
    invalid: int
    already_done: int
    written: int
    failed: int
    completion_tokens: int
    seconds: float
    decode_seconds: float
    baseline: RunSummary | None = None  # the --baseline run's, after this one

    @property
    def tokens_per_second(self) -> float:
        """Completion tokens per second of decoding (model loading excluded)."""
        return self.completion_tokens / self.decode_seconds if self.decode_seconds > 0 else 0.0


def check_writable(path: Path) -> None:
    """Fail before any model loads if the output cannot be written (creates only its folder)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DataError(f"cannot write the output {path}: {err.strerror or err}") from None
    if not os.access(path if path.exists() else path.parent, os.W_OK):
        raise DataError(f"cannot write the output {path}: permission denied")


def _record(
    prompt: PromptRecord,
    done: Completion,
    config: GenerateConfig,
    messages: list[dict[str, str]],
    system: dict[str, Any] | None = None,
) -> dict[str, Any]:
    from codit.models.chat import system_meta

    d = config.decoding
    meta: dict[str, Any] = {
        "mode": d.mode,
        "instruct": config.instruct,
        "finish_reason": done.finish_reason,
        "prompt_tokens": done.prompt_tokens,
        "completion_tokens": done.completion_tokens,
        "temperature": d.temperature,
        "top_p": d.top_p,
        "top_k": d.top_k,
        "max_new_tokens": d.max_new_tokens,
        "seed": d.seed,
    }
    if d.contrastive:
        meta.update({"base": config.base, "rule": d.rule, "alpha": d.alpha, "beta": d.beta})
    meta.update(sample_meta(prompt.id, config.num_samples))
    if system is not None:
        meta["system_turn"] = system_meta(messages, system)
    return {
        "id": prompt.id,
        "messages": [*messages, {"role": "assistant", "content": done.text}],
        "meta": meta,
    }


def _error(prompt: PromptRecord, done: Completion) -> dict[str, Any]:
    return {
        "id": done.key,
        "error": done.error,
        "line": prompt.line,
        "prompt_tokens": done.prompt_tokens,
    }


def generate(
    config: GenerateConfig | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    on_start: Callable[[int], None] | None = None,
    before_models: Callable[[GenerateConfig], None] | None = None,
    **overrides: Any,
) -> RunSummary:
    """Generate responses for every prompt of ``config.input`` into ``config.output``.

    Args:
        config: the run settings; or pass them as keyword arguments
            (``generate(input=..., output=..., decoding=DecodingConfig(...))``).
        on_progress: called with (records finished, completion tokens) after each record.
        on_start: called with the number of records to generate, once models are loaded
            (on Ray: once the workers are asked to load them).
        before_models: called once the inputs are checked and before any model loads, when
            there is work to do (the CLI checks the pair there: ``codit check``).

    With ``config.baseline`` set, the direct baseline is made next, into that file, as a run
    of its own (``GenerateConfig.baseline_run``): the pair is freed first and the instruct model
    loaded alone; a rerun of the same call resumes both.

    Returns:
        A ``RunSummary`` with counts and throughput (the baseline's in ``baseline``).

    Raises:
        Interrupted: SIGINT/SIGTERM stopped the run; every finished record is kept.
        OutputLocked: another run is writing ``config.output``.
    """
    config = config or GenerateConfig(**overrides)
    if config.baseline is not None:
        check_writable(Path(config.baseline))  # before hours of CoDIT, not after
    summary = _generate(config, on_progress, on_start, before_models)
    if config.baseline is None:
        return summary
    baseline = _generate(config.baseline_run(), on_progress, on_start, before_models)
    return replace(summary, baseline=baseline)


def _generate(
    config: GenerateConfig,
    on_progress: Callable[[int, int], None] | None,
    on_start: Callable[[int], None] | None,
    before_models: Callable[[GenerateConfig], None] | None,
) -> RunSummary:
    """One output: ``generate`` without the baseline (its frame, and the pair, end here)."""
    output = Path(str(config.output))
    err_path = errors_path(output)
    started = time.time()

    # 1. Everything that can be checked without a model.
    if config.distributed.ray:
        require("ray", "ray")
    check_writable(output)
    check_writable(err_path)
    source = source_entry(config)
    plan = plan_inputs(config)  # pass 1: every row checked, the picked ids kept as hashes
    settings = config.record_settings()
    with Run(
        output,
        "generate",
        settings,
        config,
        options=config.output_options,
        retry_errors=config.retry_errors,
    ) as run:
        check_same_revision(run.manifest, source)  # the previous run's manifest, so far
        run.skip(plan.invalid)
        done_ids = run.done_ids()
        plan.count_done(done_ids)
        run.manifest["environment"] = environment()
        run.manifest["source"] = source
        run.entry.update(
            {
                "inputs": plan.inputs,
                "invalid": len(plan.invalid),
                "already_done": plan.already_done,
                "filtered": plan.filtered,
            }
        )

        def record_models(info: dict[str, Any]) -> None:
            run.manifest["models"] = info
            run.write_manifest()

        written = failed = tokens = 0
        decode_seconds = 0.0
        if plan.todo:
            if before_models:
                before_models(config)
            # 2. Models: tokenizers and configs are checked before any weights load. Locally
            #    the pair loads here; on Ray every worker loads its own and reports it.
            #    Pass 2 hands the prompts to do out one at a time, as the engine asks.
            flight = InFlight(pending_prompts(config, plan, done_ids), config.system_prompt)
            system = template_system_handling(config)
            if config.distributed.ray:
                from codit.distributed.ray_generate import ray_completions

                completions = ray_completions(config, flight, plan.todo, record_models)
            else:
                completions = local_completions(config, flight, record_models)
            if on_start:
                on_start(plan.todo)

            # 3. Decode; append each record as it finishes. This process is the only writer
            #    (the lock), and a batch that a failed Ray worker redid may hand an id back
            #    again: each id is written once. After SIGINT/SIGTERM no new prompt is
            #    admitted and the rows in flight are finished and written.
            decode_start = time.time()
            written, failed, tokens = _write_all(
                run, completions, flight, done_ids, config, system, on_progress
            )
            decode_seconds = time.time() - decode_start
        seconds = time.time() - started
        run.entry.update(
            {
                "written": written,
                "failed": failed,
                "completion_tokens": tokens,
                "seconds": round(seconds, 3),
                "decode_seconds": round(decode_seconds, 3),
                "tokens_per_second": round(tokens / decode_seconds, 2) if decode_seconds else None,
            }
        )
        run.check_stop()
        run.finish()
    return RunSummary(
        output,
        err_path,
        run.manifest_path,
        plan.inputs,
        len(plan.invalid),
        plan.already_done,
        written,
        failed,
        tokens,
        seconds,
        decode_seconds,
    )


def _write_all(
    run: Run,
    completions: Iterable[Any],
    flight: InFlight,
    done_ids: Any,
    config: GenerateConfig,
    system: dict[str, Any] | None,
    on_progress: Callable[[int, int], None] | None,
) -> tuple[int, int, int]:
    """Append each completion as a record (or an error) as it finishes: (written, failed, tokens)."""
    written = failed = tokens = 0
    for done in completions:
        if done.key in done_ids:  # the writers add each key they write
            continue
        prompt, conversation = flight.pop(done.key)
        if done.error:
            run.errors.write(_error(prompt, done))
            failed += 1
        else:
            run.records.write(_record(prompt, done, config, conversation, system))
            written += 1
            tokens += done.completion_tokens
        if on_progress:
            on_progress(written + failed, tokens)
        if config.distributed.ray and run.stopping():
            break  # Ray workers redo what was in flight on the rerun
    return written, failed, tokens


def template_system_handling(config: GenerateConfig) -> dict[str, Any] | None:
    """What the instruct model's chat template does with a system prompt (None: no template)."""
    from codit.models.chat import system_handling
    from codit.models.loading import load_tokenizer

    tokenizer = load_tokenizer(config.instruct, config.trust_remote_code)
    if not getattr(tokenizer, "chat_template", None):
        return None
    try:
        return system_handling(tokenizer, config.chat_template_kwargs)
    except Exception:  # a template that cannot render probes fails per record later
        return None


def load_records(path: str | Path) -> list[dict[str, Any]]:
    """Read a generated dataset back (every line must be a whole record)."""
    return read_records(Path(path))
