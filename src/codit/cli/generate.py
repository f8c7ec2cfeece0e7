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
    p.set_defaults(run=run)


def quiet_transformers() -> None:
    """Keep transformers' own progress bars and notices out of codit's output."""
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()


def run(args: argparse.Namespace) -> int:
    config = from_namespace(GenerateConfig, args)
    from tqdm import tqdm

    from codit.generation.run import generate

    quiet_transformers()

    bar: Any = None
    start = time.time()

    def on_start(total: int) -> None:
        nonlocal bar, start
        start = time.time()
        bar = tqdm(
            total=total,
            unit="rec",
            disable=args.no_progress or None,
            file=sys.stderr,
            dynamic_ncols=True,
        )

    def on_progress(done: int, tokens: int) -> None:
        bar.update(done - bar.n)
        bar.set_postfix_str(f"{tokens / max(time.time() - start, 1e-9):.1f} tok/s", refresh=False)

    print(
        f"codit: loading {config.instruct}"
        + (f" and {config.base}" if config.decoding.contrastive else ""),
        file=sys.stderr,
    )
    summary = generate(config, on_progress=on_progress, on_start=on_start)
    if bar is not None:
        bar.close()
    print(
        f"codit: {summary.written} written, {summary.already_done} already there, "
        f"{summary.failed} failed, {summary.duplicates} duplicate ids skipped; "
        f"{summary.completion_tokens} tokens in {summary.seconds:.1f}s "
        f"({summary.tokens_per_second:.1f} tok/s)",
        file=sys.stderr,
    )
    print(f"codit: records -> {summary.output}", file=sys.stderr)
    if summary.failed or summary.errors_path.exists() and summary.errors_path.stat().st_size:
        print(f"codit: failures (with reasons) -> {summary.errors_path}", file=sys.stderr)
    print(f"codit: manifest -> {summary.manifest_path}", file=sys.stderr)
    return 0
