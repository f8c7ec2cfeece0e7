"""IFEval on a file: score responses against the IFEval prompts, offline, in seconds.

IFEval (Zhou et al. 2023, arXiv:2311.07911) gives 541 prompts, each with one to three verifiable
instructions. A response is scored per instruction (instruction level) and per prompt (all of its
instructions followed), in strict mode and in loose mode (see ``checks.loose_variants``).

The responses file may be IFEval's own format (``prompt``, ``response``), the same with a ``key``
or ``id``, TRL's ``prompt``/``completion``, or codit's generation records (``id``, ``messages``
ending with the assistant's turn). Responses are matched to prompts by key/id when it names an
IFEval key, else by prompt text. A prompt without a response is counted as failing every
instruction and reported as missing, never skipped.

Reading, scoring and writing the report live here; the CLI (``codit eval ifeval``) only parses
flags, and generation of responses goes through a ``TextBackend`` (with ``--ray``, through
``codit generate`` on Ray workers).
"""

from __future__ import annotations

import collections
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codit import __version__
from codit.backends.base import GenerationParams, TextBackend
from codit.backends.spec import BackendConfig, open_backend, parse_spec
from codit.config import to_dict
from codit.distributed.config import RayConfig
from codit.errors import ConfigError, DataError
from codit.evaluation.checks import follows, instruction_arguments
from codit.evaluation.responses import Response, load_responses
from codit.io.atomic import write_lines, write_text
from codit.io.invalid import Invalid, invalid_input
from codit.io.jsonl import iter_lines
from codit.io.lock import OutputLock
from codit.io.options import OutputOptions
from codit.io.rundir import Run

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IFEvalConfig:
    """What to evaluate and where to write the report (``codit eval ifeval``)."""

    output: str | None = field(
        default=None,
        metadata={"help": "folder for metrics.json, verdicts.jsonl and the chart (required)"},
    )
    responses: str | None = field(
        default=None,
        metadata={"help": "responses file to score (JSONL: prompt/response, or codit records)"},
    )
    model: str | None = field(
        default=None,
        metadata={
            "help": "generate the responses first with this model: a local model, "
            "local:MODEL_OR_PATH or openai:MODEL@BASE_URL"
        },
    )
    input_data: str | None = field(
        default=None,
        metadata={
            "help": "IFEval prompts, a local input_data.jsonl (default: the public google/IFEval "
            "dataset, downloaded once through datasets and cached)"
        },
    )
    limit: int | None = field(default=None, metadata={"help": "evaluate only the first N prompts"})
    max_new_tokens: int = field(
        default=1280, metadata={"help": "longest generated response in tokens, with --model"}
    )
    retry_errors: bool = field(
        default=False, metadata={"help": "with --model: ask again for the prompts in errors.jsonl"}
    )
    output_options: OutputOptions = field(default_factory=OutputOptions)

    def __post_init__(self) -> None:
        problems = []
        if not self.output:
            problems.append("--output is required")
        if (self.responses is None) == (self.model is None):
            problems.append("give exactly one of --responses FILE and --model MODEL")
        if self.limit is not None and self.limit < 1:
            problems.append(f"--limit must be at least 1, not {self.limit}")
        if self.max_new_tokens < 1:
            problems.append(f"--max-new-tokens must be at least 1, not {self.max_new_tokens}")
        if problems:
            raise ConfigError(problems)


@dataclass(frozen=True)
class IFEvalPrompt:
    """One IFEval prompt with its instructions and their arguments (None values dropped)."""

    key: int | str
    prompt: str
    instruction_id_list: list[str]
    kwargs: list[dict[str, Any]]


@dataclass(frozen=True)
class Verdict:
    """The verdicts on one prompt, in the order of ``instruction_id_list``."""

    key: int | str
    instruction_id_list: list[str]
    follow_strict: list[bool]
    follow_loose: list[bool]
    missing: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "instruction_id_list": self.instruction_id_list,
            "follow_strict": self.follow_strict,
            "follow_loose": self.follow_loose,
            "follow_all_strict": all(self.follow_strict),
            "follow_all_loose": all(self.follow_loose),
            "missing": self.missing,
        }


def load_prompts(path: str | Path) -> list[IFEvalPrompt]:
    """Read and validate IFEval prompts (``key``, ``prompt``, ``instruction_id_list``, ``kwargs``).

    Raises:
        DataError: a missing file, or bad records: every one of them is named.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"IFEval input {path} does not exist")
    prompts: list[IFEvalPrompt] = []
    bad: list[Invalid] = []
    seen: set[str] = set()
    for line in iter_lines(path):
        if line.invalid is not None or line.value is None:
            bad.append(line.invalid or Invalid(line.where, "unreadable"))
            continue
        try:
            prompt = _ifeval_prompt(line.value)
        except DataError as err:
            bad.append(Invalid(line.where, str(err)))
            continue
        if str(prompt.key) in seen:
            bad.append(
                Invalid(line.where, f"key {prompt.key!r} appears twice; keys must be unique")
            )
            continue
        seen.add(str(prompt.key))
        prompts.append(prompt)
    if bad:
        raise invalid_input(path, bad)
    if not prompts:
        raise DataError(f"IFEval input {path} holds no prompts")
    return prompts


def _ifeval_prompt(row: dict[str, Any]) -> IFEvalPrompt:
    missing = [f for f in ("key", "prompt", "instruction_id_list", "kwargs") if f not in row]
    if missing:
        raise DataError(
            f"lacks {missing}; IFEval prompts need key, prompt, instruction_id_list, kwargs"
        )
    key, prompt, ids, kwargs = row["key"], row["prompt"], row["instruction_id_list"], row["kwargs"]
    if isinstance(key, bool) or not isinstance(key, int | str):
        raise DataError(f"'key' must be an integer or a string, not {type(key).__name__}")
    if not isinstance(prompt, str) or not prompt.strip():
        raise DataError("'prompt' must be a non-empty text")
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise DataError("'instruction_id_list' must be a list of instruction ids")
    if not isinstance(kwargs, list) or not all(isinstance(k, dict) for k in kwargs):
        raise DataError("'kwargs' must be a list of objects")
    if len(ids) != len(kwargs):
        raise DataError(f"has {len(ids)} instructions but {len(kwargs)} kwargs")
    args = [instruction_arguments(i, k, prompt) for i, k in zip(ids, kwargs, strict=True)]
    return IFEvalPrompt(key, prompt, list(ids), args)


@dataclass(frozen=True)
class Matching:
    """Responses assigned to prompt keys, with what could not be assigned."""

    by_key: dict[str, str]
    unmatched: int
    duplicates: int


def match_responses(prompts: list[IFEvalPrompt], responses: list[Response]) -> Matching:
    """Assign each response to a prompt: by key/id when it is an IFEval key, else by prompt text.

    The first response for a prompt wins; later ones are counted as duplicates. Keys in the
    result are strings.
    """
    keys = {str(p.key) for p in prompts}
    by_text = {p.prompt: str(p.key) for p in prompts}
    by_key: dict[str, str] = {}
    unmatched = duplicates = 0
    for r in responses:
        key = r.key if r.key in keys else by_text.get(r.prompt or "")
        if key is None:
            unmatched += 1
        elif key in by_key:
            duplicates += 1
        else:
            by_key[key] = r.response
    return Matching(by_key, unmatched, duplicates)


def evaluate(prompts: list[IFEvalPrompt], by_key: dict[str, str]) -> list[Verdict]:
    """Strict and loose verdicts for every prompt; a prompt without a response fails them all."""
    verdicts = []
    for p in prompts:
        response = by_key.get(str(p.key))
        if response is None:
            fails = [False] * len(p.instruction_id_list)
            verdicts.append(Verdict(p.key, p.instruction_id_list, fails, list(fails), missing=True))
            continue
        pairs = list(zip(p.instruction_id_list, p.kwargs, strict=True))
        strict = [follows(i, response, k, loose=False, prompt=p.prompt) for i, k in pairs]
        loose = [follows(i, response, k, loose=True, prompt=p.prompt) for i, k in pairs]
        verdicts.append(Verdict(p.key, p.instruction_id_list, strict, loose))
    return verdicts


def summarize(verdicts: list[Verdict]) -> dict[str, Any]:
    """Prompt- and instruction-level accuracy, strict and loose, overall and per instruction."""
    if not verdicts:
        raise DataError("there are no prompts to score")
    totals: collections.Counter[str] = collections.Counter()
    strict: collections.Counter[str] = collections.Counter()
    loose: collections.Counter[str] = collections.Counter()
    for v in verdicts:
        for i, s, lo in zip(v.instruction_id_list, v.follow_strict, v.follow_loose, strict=True):
            totals[i] += 1
            strict[i] += s
            loose[i] += lo
    n_instructions = sum(totals.values())
    categories = sorted({i.split(":")[0] for i in totals})

    def by_category(counts: collections.Counter[str]) -> dict[str, float]:
        return {
            c: sum(counts[i] for i in totals if i.split(":")[0] == c)
            / sum(totals[i] for i in totals if i.split(":")[0] == c)
            for c in categories
        }

    return {
        "prompt_level_strict": sum(all(v.follow_strict) for v in verdicts) / len(verdicts),
        "instruction_level_strict": sum(strict.values()) / n_instructions,
        "prompt_level_loose": sum(all(v.follow_loose) for v in verdicts) / len(verdicts),
        "instruction_level_loose": sum(loose.values()) / n_instructions,
        "num_prompts": len(verdicts),
        "num_instructions": n_instructions,
        "missing_responses": sum(v.missing for v in verdicts),
        "missing_keys": [v.key for v in verdicts if v.missing],
        "per_instruction": {i: strict[i] / totals[i] for i in sorted(totals)},
        "per_instruction_loose": {i: loose[i] / totals[i] for i in sorted(totals)},
        "per_instruction_count": {i: totals[i] for i in sorted(totals)},
        "per_category_strict": by_category(strict),
        "per_category_loose": by_category(loose),
    }


def format_table(metrics: dict[str, Any]) -> str:
    """The report as a plain-text table: the four accuracies, then one row per instruction."""
    lines = [
        f"{'':46} {'strict':>8} {'loose':>8}",
        f"{'prompt-level accuracy':46} {metrics['prompt_level_strict']:8.4f} {metrics['prompt_level_loose']:8.4f}",
        f"{'instruction-level accuracy':46} {metrics['instruction_level_strict']:8.4f} {metrics['instruction_level_loose']:8.4f}",
        "",
        f"{'instruction':46} {'strict':>8} {'loose':>8} {'n':>5}",
    ]
    for i, acc in metrics["per_instruction"].items():
        lines.append(
            f"{i:46} {acc:8.4f} {metrics['per_instruction_loose'][i]:8.4f} {metrics['per_instruction_count'][i]:5d}"
        )
    lines.append("")
    lines.append(f"{metrics['num_prompts']} prompts, {metrics['num_instructions']} instructions")
    if metrics["missing_responses"]:
        lines.append(
            f"{metrics['missing_responses']} prompts had no response and count as failing every instruction"
        )
    return "\n".join(lines)


def plot_per_instruction(metrics: dict[str, Any], path: Path, title: str = "IFEval") -> Path:
    """A horizontal bar chart of strict and loose accuracy per instruction id (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ids = list(metrics["per_instruction"])
    strict = [metrics["per_instruction"][i] for i in ids]
    loose = [metrics["per_instruction_loose"][i] for i in ids]
    fig, ax = plt.subplots(figsize=(9, 0.32 * len(ids) + 1.6))
    rows = range(len(ids))
    ax.barh([r - 0.2 for r in rows], strict, height=0.4, label="strict", color="#3b6ea8")
    ax.barh([r + 0.2 for r in rows], loose, height=0.4, label="loose", color="#a8c6e8")
    ax.set_yticks(
        list(rows), [f"{i} (n={metrics['per_instruction_count'][i]})" for i in ids], fontsize=8
    )
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("accuracy")
    ax.set_title(
        f"{title}: prompt-level strict {metrics['prompt_level_strict']:.3f}, "
        f"instruction-level strict {metrics['instruction_level_strict']:.3f}",
        fontsize=10,
    )
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def write_report(
    verdicts: list[Verdict], metrics: dict[str, Any], output: Path, run: dict[str, Any]
) -> dict[str, Path]:
    """Write ``metrics.json`` (with ``run``: config and version), ``verdicts.jsonl`` and the PNG."""
    output.mkdir(parents=True, exist_ok=True)
    paths = {
        "metrics": output / "metrics.json",
        "verdicts": output / "verdicts.jsonl",
        "plot": output / "per_instruction.png",
    }
    write_text(paths["metrics"], json.dumps({**metrics, "run": run}, indent=2) + "\n")
    write_lines(paths["verdicts"], [v.to_dict() for v in verdicts])
    plot_per_instruction(metrics, paths["plot"])
    return paths


def generate_responses(
    prompts: list[IFEvalPrompt],
    backend: TextBackend,
    params: GenerationParams,
    run: Run,
    chunk_size: int = 32,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Answer the prompts ``run`` has not done yet and append the answers, chunk by chunk.

    Each line is ``{"id": key, "prompt", "response", "meta"}``; a failed request goes to the
    run's errors file with its reason (``--retry-errors`` asks again). After SIGINT/SIGTERM the
    chunk in flight is written and no other is started. Returns the number of responses written.
    """
    done = run.done_ids()
    todo = [p for p in prompts if str(p.key) not in done]
    written = 0
    for start in range(0, len(todo), chunk_size):
        run.check_stop()
        chunk = todo[start : start + chunk_size]
        conversations = [[{"role": "user", "content": p.prompt}] for p in chunk]
        for p, result in zip(chunk, backend.generate(conversations, params), strict=True):
            meta = {
                "model": backend.model,
                "backend": backend.kind,
                "finish_reason": result.finish_reason,
                "prompt_tokens": result.prompt_tokens,
                "completion_tokens": result.completion_tokens,
            }
            if result.error is not None:
                run.errors.write({"id": str(p.key), "error": result.error, "meta": meta})
                continue
            written += run.records.write(
                {"id": str(p.key), "prompt": p.prompt, "response": result.text, "meta": meta}
            )
        if progress is not None:
            progress(len(chunk))
    run.check_stop()
    return written


def generate_on_ray(
    prompts: list[IFEvalPrompt],
    config: IFEvalConfig,
    backend_config: BackendConfig,
    distributed: RayConfig,
    progress: Callable[[int], None] | None = None,
    on_generate: Callable[[int], None] | None = None,
) -> Path:
    """Answer the prompts with ``codit generate`` on Ray workers: greedy, direct, resumable.

    The answers are codit records (``id`` = IFEval key) in ``responses.ray.jsonl``, with their
    own manifest and errors file; the prompts go through ``prompts.jsonl`` in ``config.output``.
    Returns the responses file.
    """
    from codit.decoding.config import DecodingConfig
    from codit.generation.config import GenerateConfig
    from codit.generation.run import generate

    spec = parse_spec(backend_spec(str(config.model)))
    if spec.kind != "local":
        raise ConfigError(
            f"--ray runs local models; {config.model} is served elsewhere, drop --ray"
        )
    output = Path(str(config.output))
    output.mkdir(parents=True, exist_ok=True)
    prompts_path = output / "prompts.jsonl"
    write_lines(prompts_path, [{"id": str(p.key), "prompt": p.prompt} for p in prompts])
    settings = GenerateConfig(
        input=str(prompts_path),
        output=str(output / "responses.ray.jsonl"),
        instruct=spec.model,
        decoding=DecodingConfig(
            mode="direct", temperature=0.0, max_new_tokens=config.max_new_tokens
        ),
        batch_size=backend_config.batch_size,
        device=backend_config.device,
        dtype=backend_config.dtype,
        distributed=distributed,
        retry_errors=config.retry_errors,
        output_options=config.output_options,
    )
    counted = 0

    def on_progress(done: int, _tokens: int) -> None:
        nonlocal counted
        if progress is not None:
            progress(done - counted)
        counted = done

    return generate(settings, on_progress=on_progress, on_start=on_generate).output


def model_settings(model: str) -> str:
    """``kind:model`` of ``--model``: the same model behind another address answers the same."""
    spec = parse_spec(backend_spec(model))
    return f"{spec.kind}:{spec.model}"


def backend_spec(model: str) -> str:
    """``--model`` as a backend spec: a bare model name or path means ``local:``."""
    return model if model.startswith(("local:", "openai:")) else f"local:{model}"


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
