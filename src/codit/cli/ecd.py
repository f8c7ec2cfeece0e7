"""``codit ecd``: flags -> EcdConfig -> ``pipelines.ecd.run_ecd``, with progress."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from codit.config import add_arguments, config_help, from_namespace
from codit.pipelines.ecd import EcdConfig

EXAMPLE = """examples:
  codit ecd --seeds seeds.jsonl --evolver openai:qwen3-32b@http://localhost:8000/v1 \\
      --responder openai:qwen3-32b@http://localhost:8000/v1 --rounds 4 --output out/ecd.jsonl
  codit ecd ... --operations evol-instruct     # Evol-Instruct's operations instead of ECD's families
  codit ecd ... --operations ecd,verifiable --verifiable-share 0.5
                                              # half the rounds add an IFEval constraint (codit's)
  codit ecd ... --operations verifiable       # only IFEval constraints, all checked by code
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "ecd",
        help="ECD: preference pairs from evolving instructions (rejected = the previous answer)",
        description="Evolve each seed instruction for several rounds, answer every stage, and "
        "pair each evolved instruction's answer (chosen) with the previous stage's (rejected). "
        "A reconstruction of ECD from its abstract: by default the paper's families of evolution "
        "(content, style, format, reasoning, breadth), judged by an LLM; codit's verifiable "
        "operation adds IFEval constraints checked by code. Writes TRL "
        "preference records, OUTPUT.sft.jsonl and OUTPUT.report.json; every call is cached, and "
        "rerunning the same command resumes.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", help=config_help("ecd"))
    add_arguments(p, EcdConfig)
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    config = from_namespace(EcdConfig, args)
    from codit.cli.progress import print_cost, run_with_bars
    from codit.pipelines.ecd import run_ecd
    from codit.pipelines.outputs import side

    output = Path(str(config.output))
    report = run_with_bars(run_ecd, config, output, args.no_progress)
    records = report["records"]
    print(
        f"codit: {records['pairs']} pairs ({records['pairs_verifiable']} verifiable), "
        f"{records['sft']} SFT records, {records['dropped']} dropped by the checks, "
        f"{records['errors']} failed",
        file=sys.stderr,
    )
    print_cost(report)
    print(f"codit: pairs -> {output}", file=sys.stderr)
    print(f"codit: SFT view -> {side(output, 'sft')}", file=sys.stderr)
    print(f"codit: report -> {side(output, 'report', '.json')}", file=sys.stderr)
    if records["errors"]:
        print(f"codit: failures (with raw replies) -> {side(output, 'errors')}", file=sys.stderr)
    return 0
