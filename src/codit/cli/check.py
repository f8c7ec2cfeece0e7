"""``codit check --instruct A --base B``: what a run with this pair will do, before it runs.

Flags come from ``codit.models.doctor.CheckConfig``; the work is ``doctor.diagnose``. No weights
load. Exits 0 when the pair can run, else with the first problem's exit code (4).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from codit.config import add_arguments, from_namespace
from codit.models.doctor import CheckConfig

EXAMPLE = """example:
  codit check --instruct Qwen/Qwen3-8B --base Qwen/Qwen3-8B-Base \\
      --chat-template-kwargs enable_thinking=false --batch-size 64 --max-new-tokens 4096
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "check",
        help="check a model pair before a run: what is contrasted, stops, prompts, memory",
        description="Check an instruct/base pair from configs and tokenizers alone (no weights): "
        "architectures, parameters, dtypes, vocabularies, EOS ids, a rendered sample prompt, the "
        "context limit and the memory the run needs. Every problem is one sentence and a non-zero exit.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(p, CheckConfig)
    p.add_argument("--mode", choices=("codit", "direct"), default="codit", help="direct: no base")
    p.add_argument("--json", metavar="FILE", help="also write the report as JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    config = from_namespace(CheckConfig, args)
    from codit.cli.quiet import quiet_transformers
    from codit.models.doctor import diagnose, format_report

    quiet_transformers()
    report = diagnose(config, contrastive=args.mode == "codit")
    for line in format_report(report):
        print(line)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(report.to_dict(), f, indent=2)
    if report.problems:
        print(f"codit: {len(report.problems)} problem(s); see the lines above", file=sys.stderr)
        return 4
    print("codit: the pair is ready")
    return 0
