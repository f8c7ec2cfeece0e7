"""``codit experiment codit|coin``: replay a paper's experiment in miniature on the tiny pair.

Each experiment is one ``Experiment`` entry: its flags come from its config dataclass, its work
is its module's ``run``, its table its report module's ``table``. This module parses flags,
shows one progress bar per stage and prints the table; importing it does not import torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codit.config import add_arguments, config_help, from_namespace, load_yaml
from codit.experiments.codit_mini import QUICK as CODIT_QUICK
from codit.experiments.codit_mini import CoditExperimentConfig
from codit.experiments.coin_mini import QUICK as COIN_QUICK
from codit.experiments.coin_mini import CoinExperimentConfig

CODIT_EXAMPLES = """examples:
  codit experiment codit                          # 3 seeds; 16 min on 2 shared CPU cores (docs/experiment.md)
  codit experiment codit --quick                  # every stage in about a minute (smoke run)
  codit experiment codit --seeds 5                # rerun into the same --output adds seeds 3 and 4
  codit experiment codit --alpha 0.1,0.01,0.001 --beta 0.25,0.5,1.0 --students 0.01:1
                                                  # a grid: teacher data of 9 cells, students of one
"""
COIN_EXAMPLES = """examples:
  codit experiment coin --threads 2               # 3 seeds; 9 min on 2 idle CPU cores (docs/experiment.md)
  codit experiment coin --quick                   # every stage in about a minute (smoke run)
  codit experiment coin --tasks size,fly --seeds 5
"""


@dataclass(frozen=True)
class Experiment:
    """One ``codit experiment`` subcommand: its settings and where its work lives."""

    config: type
    quick: dict[str, Any]
    module: str  # has run(config, on_progress, bars)
    report: str  # has table(results)
    help: str
    description: str
    examples: str

    def describe(self, config: Any) -> str:
        return f"{self.help} in {config.output} ({config.seeds} seeds); a rerun resumes"


EXPERIMENTS = {
    "codit": Experiment(
        CoditExperimentConfig,
        CODIT_QUICK,
        "codit.experiments.codit_mini",
        "codit.experiments.report",
        "students trained on direct vs CoDIT data, scored on held-out verifiable instructions",
        "The CoDIT paper's experiment in miniature: the same toy prompts answered by "
        "tiny-instruct directly and with CoDIT, a GPT-NeoX student fine-tuned on each, both "
        "scored with IFEval's checks on held-out prompts, over several seeds with 95% "
        "t-intervals. Writes results.json, results.md and results.png into --output; a rerun "
        "resumes.",
        CODIT_EXAMPLES,
    ),
    "coin": Experiment(
        CoinExperimentConfig,
        COIN_QUICK,
        "codit.experiments.coin_mini",
        "codit.experiments.coin_report",
        "tiny-instruct tuned with and without the CoIN term, scored under perturbed instructions",
        "The CoIN paper's experiment in miniature: tiny-instruct is tuned further on pairs of "
        "an instruction and its paraphrase (five toy yes/no-style tasks) with the generation "
        "loss alone and with CoIN's contrastive term added, then both models answer held-out "
        "instances under six unseen wordings per task, clean and perturbed at the character, "
        "word, sentence and semantic levels: exact-match accuracy and its spread over the "
        "wordings, over several seeds with 95% t-intervals. Writes results.json, results.md "
        "and results.png into --output; a rerun resumes.",
        COIN_EXAMPLES,
    ),
}


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "experiment",
        help="replay a paper's experiment in miniature on the tiny pair",
        description="Small end-to-end experiments on the built-in tiny pair.",
    )
    sub = p.add_subparsers(dest="experiment", metavar="EXPERIMENT")
    for name, experiment in EXPERIMENTS.items():
        c = sub.add_parser(
            name,
            help=experiment.help,
            description=experiment.description,
            epilog=experiment.examples,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        c.add_argument("--config", help=config_help(f"experiment {name}"))
        c.add_argument(
            "--quick",
            action="store_true",
            help="smoke-run preset ("
            + ", ".join(f"{k}={v}" for k, v in experiment.quick.items())
            + "); flags and --config win over it",
        )
        add_arguments(c, experiment.config)
        c.add_argument("--no-progress", action="store_true", help="no progress bars")
        c.set_defaults(run=_runner(experiment))
    p.set_defaults(run=_help(p))


def _help(parser: argparse.ArgumentParser) -> Any:
    def show(args: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    return show


def _runner(experiment: Experiment) -> Any:
    def run(args: argparse.Namespace) -> int:
        return _run(experiment, args)

    return run


def _run(experiment: Experiment, args: argparse.Namespace) -> int:
    if args.quick:  # precedence: flags > --config file > --quick > defaults
        preset = dict(experiment.quick)
        for key in load_yaml(args.config) if args.config else {}:
            preset.pop(key, None)
        for key, value in preset.items():
            if getattr(args, key, None) is None:
                setattr(args, key, value)
    config: Any = from_namespace(experiment.config, args)

    from codit.cli.progress import StageBars
    from codit.cli.quiet import quiet_transformers

    work = importlib.import_module(experiment.module)
    report = importlib.import_module(experiment.report)
    quiet_transformers()  # also TRL's tokenizing bars: codit shows its own stages
    print(f"codit: {experiment.describe(config)}", file=sys.stderr)
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
        results = work.run(config, on_progress=on_progress, bars=show_bars)
    finally:
        bars.close()
    print(report.table(results))
    out = Path(config.output)
    if (out / "grid.png").is_file() and len(getattr(config, "grid", ())) > 1:
        print(f"codit: the grid's heat map is {out / 'grid.png'}", file=sys.stderr)
    print(
        f"\ncodit: {out / 'results.json'}, {out / 'results.md'}, {out / 'results.png'} "
        f"({time.time() - start:.0f} s)",
        file=sys.stderr,
    )
    return 0
