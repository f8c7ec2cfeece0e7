"""``codit codeclm``: flags -> CodecLMConfig -> ``pipelines.codeclm.run_codeclm``, with progress."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from codit.config import add_arguments, config_help, from_namespace
from codit.pipelines.codeclm import CodecLMConfig

EXAMPLE = """examples:
  codit codeclm --strong openai:qwen3-32b@http://localhost:8000/v1 \\
      --target openai:my-sft-7b@http://localhost:8001/v1 \\
      --seeds seeds.jsonl --prompt-field instruction --output out/codeclm.jsonl --num-pairs 500
  codit codeclm --config codeclm-paper --strong ... --target ... --seeds ... --output ...
  codit codeclm ... --pool-only        # write out/codeclm.pool.jsonl, review it, then rerun without
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "codeclm",
        help="CodecLM: instructions tailored to a target model by a strong model",
        description="Encode seed instructions into metadata, write new instructions, make them "
        "harder with Self-Rubrics, and keep those where the strong model's answer beats the "
        "target's by more than the threshold (Contrastive Filtering). Writes TRL conversational "
        "SFT records and OUTPUT.report.json; every call is cached, and rerunning the same command "
        "resumes.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", help=config_help("codeclm"))
    add_arguments(p, CodecLMConfig)
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    config = from_namespace(CodecLMConfig, args)
    from codit.cli.progress import print_cost, run_with_bars
    from codit.pipelines.codeclm import run_codeclm
    from codit.pipelines.outputs import side

    output = Path(str(config.output))
    report = run_with_bars(run_codeclm, config, output, args.no_progress)
    if config.pool_only:
        print(
            f"codit: {report['stages']['pool']['size']} metadata entries -> {side(output, 'pool')}; "
            "edit it if you like, then rerun without --pool-only",
            file=sys.stderr,
        )
        print_cost(report)
        return 0
    records = report["records"]
    print(
        f"codit: {records['kept']} kept ({records['kept_strong']} strong, {records['kept_target']} target), "
        f"{records['dropped']} dropped by the filter, {records['errors']} failed",
        file=sys.stderr,
    )
    pairs = report["stages"].get("pairs")
    if pairs:
        why = {
            "reached": "reached",
            "pool spent": "not reached: the pool is spent (new passes wrote no new instruction)",
            "top-up limit": "not reached: --max-top-ups passes done",
        }[pairs["stopped"]]
        print(f"codit: --num-pairs {pairs['wanted']}: {why}", file=sys.stderr)
    print_cost(report)
    print(f"codit: records -> {output}", file=sys.stderr)
    print(f"codit: report -> {side(output, 'report', '.json')}", file=sys.stderr)
    if records["errors"]:
        print(f"codit: failures (with raw replies) -> {side(output, 'errors')}", file=sys.stderr)
    return 0
