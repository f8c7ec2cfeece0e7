"""``codit select``: flags -> SelectConfig -> ``annotation.select.run_select``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from codit.annotation.select import SelectConfig
from codit.cli.command import config_command
from codit.config import from_namespace

EXAMPLE = """example (the Best-of-N baseline in three commands):
  codit generate --mode direct --num-samples 4 --input prompts.jsonl --output out/direct4.jsonl
  codit annotate --input out/direct4.jsonl --judge openai:gpt-oss-120b@http://localhost:8000/v1 \\
      --output out/direct4.ann.jsonl
  codit select --best --input out/direct4.ann.jsonl --output out/bon.jsonl
"""


def register(subparsers: Any) -> None:
    config_command(
        subparsers,
        "select",
        SelectConfig,
        run,
        help="Best-of-N: keep the highest-scored sample of each prompt",
        description="Group annotated samples by prompt and keep the best-graded one (ties: the "
        "lowest sample index; unscored samples never win). Writes one record per prompt, with "
        "the prompt's id, and OUTPUT.report.json.",
        epilog=EXAMPLE,
    )


def run(args: argparse.Namespace) -> int:
    config = from_namespace(SelectConfig, args)
    from codit.annotation.select import run_select

    report = run_select(config)
    left_out = report["no_scored_candidate"]
    print(
        f"codit: {report['chosen']} of {report['prompts']} prompts chosen from "
        f"{report['candidates']} candidates ({report['ties_broken']} ties broken by sample index); "
        f"mean score {report['mean_score_chosen']} chosen vs {report['mean_score_all_candidates']} "
        f"all candidates",
        file=sys.stderr,
    )
    if left_out:
        print(
            f"codit: {len(left_out)} prompts had no scored candidate and were left out "
            f"(listed in the report)",
            file=sys.stderr,
        )
    print(f"codit: best-of-N records -> {report['output']}", file=sys.stderr)
    return 0
