"""Answers to IFEval's prompts before they are scored: through a ``TextBackend``, or on Ray.

``generate_responses`` asks a backend chunk by chunk and appends each answer to a resumable
run; ``generate_on_ray`` hands the prompts to ``codit generate`` on Ray workers (greedy,
direct). Both write files that ``codit.evaluation.responses`` reads back.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from codit.backends.base import GenerationParams, TextBackend
from codit.backends.spec import BackendConfig, parse_spec
from codit.distributed.config import RayConfig
from codit.errors import ConfigError
from codit.evaluation.ifeval_config import IFEvalConfig
from codit.evaluation.ifeval_data import IFEvalPrompt
from codit.io.atomic import write_lines
from codit.io.rundir import Run


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
