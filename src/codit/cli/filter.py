"""``codit filter``: flags -> FilterConfig -> ``annotation.filter.run_filter``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from codit.annotation.filter import FilterConfig
from codit.cli.command import config_command
from codit.config import from_namespace

EXAMPLE = """examples:
  codit filter --input out/codit.ann.jsonl --min-score 7 --drop-repetitive --output out/sft.jsonl
  codit filter --input out/codit.jsonl --drop-repetitive --drop-length-capped --output out/sft.jsonl
"""


def register(subparsers: Any) -> None:
    config_command(
        subparsers,
        "filter",
        FilterConfig,
        run,
        help="a training set from (annotated) records: drop low scores, repetition, cut-offs",
        description="Keep the records that pass every rule asked for, unchanged and in order, "
        "and report what each rule removed (printed and in OUTPUT.report.json). The repetition "
        "and length rules work on any records file; --min-score needs codit annotate first.",
        epilog=EXAMPLE,
    )


def run(args: argparse.Namespace) -> int:
    config = from_namespace(FilterConfig, args)
    from codit.annotation.filter import run_filter

    report = run_filter(config)
    print(json.dumps({k: v for k, v in report.items() if k not in ("input", "output")}, indent=2))
    print(
        f"codit: kept {report['kept']} of {report['records']} records -> {report['output']}",
        file=sys.stderr,
    )
    return 0
