"""``codit export``: a records file -> a carded dataset folder (-> the hub)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from codit.config import add_arguments, from_namespace
from codit.export.run import ExportConfig

EXAMPLE = """example:
  codit export out/codit.jsonl                                     # -> out/codit-dataset/
  codit export out/codit.jsonl --format jsonl --shard-size 50000 --to out/hf
  HF_TOKEN=hf_... codit export out/codit.jsonl --push-to-hub my-org/codit-qwen3 --license apache-2.0
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "export",
        help="write a records file as a datasets folder with a dataset card; push it to the hub",
        description="Write OUT.jsonl as sharded Parquet or JSONL with a README.md dataset card "
        "written from its manifest; loads with datasets.load_dataset(FOLDER).",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("records", help="a codit output (.jsonl) with its .manifest.json next to it")
    add_arguments(p, ExportConfig)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    config = from_namespace(ExportConfig, args)
    from codit.export.run import export

    summary = export(args.records, config)
    print(
        f"codit: {summary.records} records in {len(summary.shards)} {config.format} "
        f"shard(s) -> {summary.folder}",
        file=sys.stderr,
    )
    print(f"codit: dataset card -> {summary.card}", file=sys.stderr)
    if summary.url:
        print(f"codit: published -> {summary.url}", file=sys.stderr)
    return 0
