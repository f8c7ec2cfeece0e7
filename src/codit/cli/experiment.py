"""``codit experiment codit``: replay a paper's experiment in miniature on the built-in tiny pair.

Flags come from ``CoditExperimentConfig``; the work is ``codit.experiments.codit_mini.run``.
This module parses flags, shows one progress bar per stage and prints the table; importing it
does not import torch.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from codit.config import add_arguments, from_namespace, load_yaml
from codit.experiments.codit_mini import QUICK, CoditExperimentConfig

EXAMPLE = """examples:
  codit experiment codit                          # 3 seeds; 16 min on 2 shared CPU cores (docs/experiment.md)
  codit experiment codit --quick                  # every stage in about a minute (smoke run)
  codit experiment codit --seeds 5                # rerun into the same --output adds seeds 3 and 4
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "experiment",
        help="replay a paper's experiment in miniature on the tiny pair",
        description="Small end-to-end experiments on the built-in tiny pair.",
    )
    sub = p.add_subparsers(dest="experiment", metavar="EXPERIMENT")
    c = sub.add_parser(
        "codit",
        help="students trained on direct vs CoDIT data, scored on held-out verifiable instructions",
        description="The CoDIT paper's experiment in miniature: the same toy prompts answered by "
        "tiny-instruct directly and with CoDIT, a GPT-NeoX student fine-tuned on each, both "
        "scored with IFEval's checks on held-out prompts, over several seeds with 95% "
        "t-intervals. Writes results.json, results.md and results.png into --output; a rerun "
        "resumes.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    c.add_argument("--config", help="YAML file with any of the settings below (flags win)")
    c.add_argument("--quick", action="store_true",
                   help="smoke-run preset (" + ", ".join(f"{k}={v}" for k, v in QUICK.items())
                   + "); flags and --config win over it")
    add_arguments(c, CoditExperimentConfig)
    c.add_argument("--no-progress", action="store_true", help="no progress bars")
    c.set_defaults(run=run)
    p.set_defaults(run=_help(p))


def _help(parser: argparse.ArgumentParser) -> Any:
    def show(args: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    return show


def run(args: argparse.Namespace) -> int:
    if args.quick:  # precedence: flags > --config file > --quick > defaults
        preset = dict(QUICK)
        for key in load_yaml(Path(args.config)) if args.config else {}:
            preset.pop(key, None)
        for key, value in preset.items():
            if getattr(args, key, None) is None:
                setattr(args, key, value)
    config = from_namespace(CoditExperimentConfig, args)

    from codit.cli.generate import quiet_transformers
    from codit.cli.progress import StageBars
    from codit.experiments.codit_mini import run as run_experiment
    from codit.experiments.report import table

    quiet_transformers()
    import datasets

    datasets.disable_progress_bars()  # TRL's tokenizing passes; codit shows its own stages
    print(f"codit: CoDIT experiment in {config.output} ({config.seeds} seeds, {config.prompts} "
          "prompts); a rerun resumes", file=sys.stderr)
    show_bars = not args.no_progress and sys.stderr.isatty()
    bars = StageBars(disable=not show_bars)
    start = time.time()
    last_stage = [""]

    def on_progress(stage: str, done: int, total: int) -> None:
        if not show_bars and stage != last_stage[0]:  # a log file gets one line per stage
            print(f"codit: {time.time() - start:5.0f}s  {stage}", file=sys.stderr, flush=True)
        last_stage[0] = stage
        bars(stage, done, total)

    try:
        results = run_experiment(config, on_progress=on_progress, bars=show_bars)
    finally:
        bars.close()
    print(table(results))
    out = Path(config.output)
    print(f"\ncodit: {out / 'results.json'}, {out / 'results.md'}, {out / 'results.png'} "
          f"({time.time() - start:.0f} s)", file=sys.stderr)
    return 0
