"""``codit compare``: two records files -> report.md, metrics.json and PNG plots."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from codit.config import add_arguments, from_namespace

EXAMPLE = """example:
  codit compare out/direct.jsonl out/codit.jsonl --labels direct,codit --output out/compare
  codit compare a.jsonl b.jsonl --prompts ifeval_input_data.jsonl --output out/cmp   # with IFEval checks
"""


def register(subparsers: Any) -> None:
    from codit.compare.run import CompareConfig

    p = subparsers.add_parser(
        "compare",
        help="compare two datasets: lengths, finish reasons, distinct-n, IFEval checks, examples",
        description="Compare two codit outputs on the ids they share; writes report.md, "
        "metrics.json, lengths.png and (when the prompts carry IFEval instructions) checks.png.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("a", help="first records file (.jsonl)")
    p.add_argument("b", help="second records file (.jsonl)")
    add_arguments(p, CompareConfig)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from codit.compare.run import CompareConfig, compare

    config = from_namespace(CompareConfig, args)
    result = compare(args.a, args.b, config)
    a, b = result["labels"]
    sa, sb = result["sides"][a], result["sides"][b]
    print(
        f"codit: {result['shared']} shared ids; mean length {sa['length']['mean']:.1f} vs "
        f"{sb['length']['mean']:.1f} {result['length_unit']}; distinct-2 {sa['distinct_2']:.3f} vs "
        f"{sb['distinct_2']:.3f}; identical {result['identical']:.1%}",
        file=sys.stderr,
    )
    print(f"codit: report -> {result['report']}", file=sys.stderr)
    return 0
