"""``codit generate``: flags -> GenerateConfig -> ``generation.run.generate``, with a progress bar."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from codit.config import add_arguments, config_help, from_namespace
from codit.generation.config import GenerateConfig

EXAMPLE = """example:
  codit generate --input prompts.jsonl --output out/codit.jsonl            # the built-in tiny pair
  codit generate --input prompts.jsonl --output out/codit.jsonl --baseline out/direct.jsonl
  codit generate --instruct Qwen/Qwen3-8B --base Qwen/Qwen3-8B-Base \\
      --input prompts.jsonl --output out/qwen3.jsonl --chat-template-kwargs enable_thinking=false
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "generate",
        help="generate responses by contrastive decoding (CoDIT) or directly",
        description="Generate a TRL-format SFT dataset. Records are appended as they finish; "
        "rerunning the same command resumes.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", help=config_help("generate"))
    add_arguments(p, GenerateConfig)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--no-check", action="store_true", help="skip the pair check (codit check) before loading"
    )
    p.set_defaults(run=run)


def check_pair_first(config: GenerateConfig) -> None:
    """``codit check`` in short, from configs and tokenizers: prints it, raises on a problem."""
    from codit.errors import ModelError
    from codit.models.doctor import CheckConfig, diagnose, format_report

    check = CheckConfig(
        instruct=config.instruct,
        base=config.base,
        device=config.device,
        base_device=config.base_device,
        device_map=config.device_map,
        dtype=config.dtype,
        batch_size=config.batch_size,
        max_new_tokens=config.decoding.max_new_tokens,
        system_prompt=config.system_prompt,
        chat_template_kwargs=config.chat_template_kwargs,
        trust_remote_code=config.trust_remote_code,
    )
    report = diagnose(check, config.decoding.contrastive, memory=not config.distributed.ray)
    for line in format_report(report, full=False):
        if not line.startswith("problem: "):
            print(f"codit: {line}", file=sys.stderr)
    if len(report.problems) == 1:
        raise ModelError(report.problems[0])
    for problem in report.problems:
        print(f"codit: problem: {problem}", file=sys.stderr)
    if report.problems:
        raise ModelError(
            f"the pair check found {len(report.problems)} problems, listed above; "
            "fix them, or pass --no-check to skip the check"
        )


def run(args: argparse.Namespace) -> int:
    config = from_namespace(GenerateConfig, args)
    from codit.cli.progress import bar as progress_bar
    from codit.cli.quiet import quiet_transformers
    from codit.generation.run import generate

    quiet_transformers()

    bar: Any = None
    start = time.time()

    def on_start(total: int) -> None:
        nonlocal bar, start
        if bar is not None:  # the --baseline run's bar follows the first one
            bar.close()
        start = time.time()
        bar = progress_bar(total, "rec", args.no_progress)

    def on_progress(done: int, tokens: int) -> None:
        bar.update(done - bar.n)
        bar.set_postfix_str(f"{tokens / max(time.time() - start, 1e-9):.1f} tok/s", refresh=False)

    def before_models(config: GenerateConfig) -> None:
        if not args.no_check:
            check_pair_first(config)
        print(
            f"codit: loading {config.instruct}"
            + (f" and {config.base}" if config.decoding.contrastive else ""),
            file=sys.stderr,
        )

    summary = generate(
        config, on_progress=on_progress, on_start=on_start, before_models=before_models
    )
    if bar is not None:
        bar.close()
    report(summary)
    if summary.baseline is not None:
        report(summary.baseline)
    return 0


def report(summary: Any) -> None:
    """What a run did, on stderr (a ``RunSummary``)."""
    print(
        f"codit: {summary.written} written, {summary.already_done} already there, "
        f"{summary.failed} failed, {summary.invalid} invalid input lines skipped; "
        f"{summary.completion_tokens} tokens in {summary.seconds:.1f}s "
        f"({summary.tokens_per_second:.1f} tok/s)",
        file=sys.stderr,
    )
    print(f"codit: records -> {summary.output}", file=sys.stderr)
    if summary.failed or summary.errors_path.exists() and summary.errors_path.stat().st_size:
        print(f"codit: failures (with reasons) -> {summary.errors_path}", file=sys.stderr)
    print(f"codit: manifest -> {summary.manifest_path}", file=sys.stderr)
