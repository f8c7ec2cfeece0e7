"""``codit tiny``: rebuild the built-in tiny model pair, or measure how well it follows instructions.

``codit tiny build`` runs ``codit.tiny.build.build`` (flags from ``BuildConfig``) and
``codit tiny eval`` runs ``codit.tiny.evaluate.evaluate`` (flags from ``EvalConfig``) and
prints the IFEval accuracy table. Torch loads only inside ``run``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from codit.config import add_arguments, config_help, from_namespace
from codit.tiny.build import MODELS_DIR, BuildConfig
from codit.tiny.evaluate import EvalConfig

EXAMPLE = """examples:
  codit tiny build                              # rebuild the shipped pair in place (~10 min on 2 cores)
  codit tiny build --output-dir /tmp/tiny --seed 1
  codit tiny eval                               # held-out instruction following of the shipped pair
  codit tiny eval --limit 40 --samples 2 --output-dir out/tiny-eval
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "tiny",
        help="build or evaluate the built-in tiny model pair",
        description="The built-in tiny pair (tiny-base, tiny-instruct): rebuild it from its seed "
        "or score it on held-out verifiable instructions.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="tiny_command", metavar="SUBCOMMAND")
    b = sub.add_parser(
        "build",
        help="build tiny-base and tiny-instruct from the toy world",
        description="Generate the toy world, train the tokenizer, pre-train tiny-base and "
        "fine-tune tiny-instruct; deterministic for a seed on one machine.",
    )
    b.add_argument(
        "--output-dir",
        default=None,
        help=f"where tiny-base/ and tiny-instruct/ go (default: {MODELS_DIR})",
    )
    b.add_argument("--config", help=config_help("tiny build"))
    add_arguments(b, BuildConfig)
    b.add_argument("--no-progress", action="store_true", help="no progress bars")
    e = sub.add_parser(
        "eval",
        help="score tiny-base, tiny-instruct and CoDIT on the held-out prompts",
        description="Answer the held-out prompts with tiny-base, tiny-instruct (direct) and "
        "tiny-instruct with CoDIT, and print IFEval's accuracies.",
    )
    add_arguments(e, EvalConfig)
    e.add_argument("--samples", type=int, default=0, help="also print N sample answers per setting")
    p.set_defaults(run=run, tiny_help=p.print_help)


def run(args: argparse.Namespace) -> int:
    if args.tiny_command == "build":
        return _build(args)
    if args.tiny_command == "eval":
        return _eval(args)
    args.tiny_help()
    return 2


def _build(args: argparse.Namespace) -> int:
    config = from_namespace(BuildConfig, args)
    from codit.cli.quiet import quiet_transformers
    from codit.tiny.build import build

    quiet_transformers()
    output = Path(args.output_dir) if args.output_dir else MODELS_DIR
    print(f"codit: building the tiny pair into {output} (seed {config.seed})", file=sys.stderr)
    report = build(config, output, progress=not args.no_progress)
    size = sum(
        f.stat().st_size for d in (report.base_dir, report.instruct_dir) for f in d.iterdir()
    )
    print(f"codit: tiny-base -> {report.base_dir}", file=sys.stderr)
    print(f"codit: tiny-instruct -> {report.instruct_dir}", file=sys.stderr)
    print(f"codit: held-out prompts -> {report.heldout_path}", file=sys.stderr)
    times = ", ".join(f"{k} {v:.0f}s" for k, v in report.seconds.items())
    losses = ", ".join(f"{k} {v:.3f}" for k, v in report.final_loss.items())
    print(f"codit: {size / 1e6:.1f} MB on disk; {times}; final loss {losses}", file=sys.stderr)
    return 0


def _eval(args: argparse.Namespace) -> int:
    config = from_namespace(EvalConfig, args)
    if args.samples < 0:
        from codit.errors import ConfigError

        raise ConfigError(f"--samples must be >= 0, got {args.samples}")
    from codit.cli.quiet import quiet_transformers
    from codit.tiny.evaluate import breakdown, evaluate, table

    quiet_transformers()
    start = time.time()
    results, prompts = evaluate(config)
    decoding = (
        "greedy"
        if config.temperature == 0
        else f"temperature {config.temperature}, seed {config.seed}"
    )
    print(
        f"{len(prompts)} held-out prompts, {sum(len(p.instruction_id_list) for p in prompts)} "
        f"instructions, {decoding}, max {config.max_new_tokens} new tokens "
        f"({time.time() - start:.0f}s)\n"
    )
    print(table(results))
    print()
    print(breakdown(results))
    for i in range(min(args.samples, len(prompts))):
        print(f"\n### prompt {prompts[i].key}: {prompts[i].prompt}")
        for result in results:
            print(f"\n[{result.setting}]\n{result.responses[i]}")
    return 0
