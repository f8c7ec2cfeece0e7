"""``codit annotate``: flags -> AnnotateConfig -> ``annotation.annotate.run_annotate``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from codit.annotation.annotate import AnnotateConfig
from codit.config import add_arguments, from_namespace

EXAMPLE = """examples:
  codit annotate --input out/direct.jsonl --judge openai:gpt-oss-120b@http://localhost:8000/v1 \\
      --output out/direct.ann.jsonl
  codit annotate --input out/codit.jsonl --judge local:Qwen/Qwen3-8B --tokenizer Qwen/Qwen3-8B \\
      --output out/codit.ann.jsonl
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "annotate",
        help="grade every response 1-10 with an LLM judge; add its length and a repetition flag",
        description="Grade each record's response with a judge (analysis, strengths and "
        "weaknesses, then a 1-10 score; the full judgment is kept), count its tokens and flag "
        "repetition (the CoDIT authors' rule). Writes the records with an 'annotation' field, "
        "OUTPUT.report.json and OUTPUT.manifest.json; every judge call is cached, and rerunning "
        "the same command resumes.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", help="YAML file with any of the settings below (flags win)")
    add_arguments(p, AnnotateConfig)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    config = from_namespace(AnnotateConfig, args)
    from codit.annotation.annotate import run_annotate
    from codit.cli.progress import print_cost, run_with_bars

    if config.tokenizer or not str(config.judge).startswith("openai:"):
        from codit.cli.quiet import quiet_transformers

        quiet_transformers()  # a local judge or a tokenizer loads transformers anyway

    output = Path(str(config.output))
    print(f"codit: grading {config.input} with {config.judge}", file=sys.stderr)
    report = run_with_bars(run_annotate, config, output, args.no_progress)
    records, score, rep = report["records"], report["score"], report["repetition"]
    mean = f", mean score {score['mean']:.2f}" if score.get("count") else ""
    print(
        f"codit: {records['annotated']} records annotated ({records['already_done']} already "
        f"there): {records['scored']} scored, {records['unscored']} unscored{mean}; "
        f"{rep['repetitive']} repetitive of {rep['checked']} long enough to check",
        file=sys.stderr,
    )
    print_cost(report)
    print(f"codit: annotated records -> {output}", file=sys.stderr)
    print(f"codit: report -> {output.with_name(output.stem + '.report.json')}", file=sys.stderr)
    return 0
