"""``codit paraphrase``: flags -> ParaphraseConfig -> ``paraphrase.pipeline.paraphrase_file``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from codit.backends.spec import BackendConfig
from codit.config import add_arguments, config_help, from_namespace
from codit.paraphrase.pipeline import ParaphraseConfig

EXAMPLE = """examples:
  codit paraphrase --input sft.jsonl --output pairs.jsonl                      # char, word, sentence
  codit paraphrase --input alpaca.jsonl --output pairs.jsonl \\
      --levels char,word,sentence,semantic --backend openai:qwen3-8b@http://localhost:8000/v1
  codit train coin --model tiny-instruct --data pairs.jsonl --output out/coin
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "paraphrase",
        help="make CoIN training pairs: each instruction with a perturbed twin",
        description="Pair every instruction of a dataset with a perturbed version (typos, word "
        "edits, distractors, or a rewording by an LLM kept only if close in meaning). Records are "
        "appended as they finish; rerunning the same command resumes.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", help=config_help("paraphrase"))
    add_arguments(p, ParaphraseConfig)
    add_arguments(p, BackendConfig)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    config = from_namespace(ParaphraseConfig, args)
    backend_config = from_namespace(
        BackendConfig, argparse.Namespace(**{**vars(args), "config": None})
    )
    from codit.cli.progress import bar as progress_bar
    from codit.paraphrase.pipeline import paraphrase_file

    bar: Any = None

    def on_progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = progress_bar(total, "rec", args.no_progress)
        bar.update(done - bar.n)

    manifest = paraphrase_file(config, backend_config, on_progress)
    if bar is not None:
        bar.close()
    counts = manifest["counts"]
    made = ", ".join(f"{counts[level]} {level}" for level in config.levels)
    print(
        f"codit: {made}; {counts['errors']} failed, {counts['skipped']} already done",
        file=sys.stderr,
    )
    print(f"codit: pairs -> {config.output}", file=sys.stderr)
    if counts["errors"]:
        print(f"codit: failures (with reasons) -> {manifest['errors']}", file=sys.stderr)
    return 0
