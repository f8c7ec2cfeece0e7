"""``codit eval``: ``ifeval`` (verifiable instruction following) and ``judge`` (pairwise LLM judge).

Flags come from ``IFEvalConfig``, ``JudgeConfig`` and ``BackendConfig``; the work is done by
``codit.evaluation.ifeval.run_ifeval`` and ``codit.evaluation.judge.run_judge``. Importing this
module loads no torch, openai or matplotlib.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from codit import __version__
from codit.backends.spec import BackendConfig
from codit.config import add_arguments, from_namespace, to_dict
from codit.distributed.config import RayConfig
from codit.evaluation.ifeval import IFEvalConfig
from codit.evaluation.judge import JudgeConfig

IFEVAL_EXAMPLE = """examples:
  codit eval ifeval --responses responses.jsonl --output out/ifeval
  codit eval ifeval --model tiny-instruct --limit 20 --output out/ifeval-tiny
  codit eval ifeval --model openai:qwen3-8b@http://localhost:8000/v1 --output out/ifeval-qwen3
"""

JUDGE_EXAMPLE = """example:
  codit eval judge --a student.jsonl --b teacher.jsonl \\
      --judge openai:qwen3-32b@http://localhost:8000/v1 --output out/judge
"""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="evaluate models: IFEval checks on a file, pairwise LLM judging",
        description="Evaluate responses: `ifeval` checks IFEval's verifiable instructions offline; "
        "`judge` compares two models' responses with an LLM judge.",
    )
    sub = parser.add_subparsers(dest="eval_command", metavar="EVALUATION")

    ifeval = sub.add_parser(
        "ifeval",
        help="IFEval prompt- and instruction-level accuracy, strict and loose",
        description="Score responses on IFEval's 541 prompts (or generate them with --model first). "
        "Writes metrics.json, verdicts.jsonl and per_instruction.png into --output.",
        epilog=IFEVAL_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(ifeval, IFEvalConfig)
    add_arguments(ifeval, BackendConfig)
    add_arguments(ifeval, RayConfig)
    ifeval.add_argument("--no-progress", action="store_true", help="no progress bar")
    ifeval.set_defaults(run=run_ifeval)

    judge = sub.add_parser(
        "judge",
        help="pairwise LLM judging of two responses files: win rate and CRR",
        description="Judge each pair of responses twice with the order swapped; A wins only if it "
        "wins both orders (CodecLM). Writes judgments.jsonl and metrics.json into --output.",
        epilog=JUDGE_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    judge.add_argument(
        "--a", required=True, metavar="FILE", help="responses of the model under test"
    )
    judge.add_argument("--b", required=True, metavar="FILE", help="responses to compare against")
    judge.add_argument(
        "--judge",
        required=True,
        metavar="SPEC",
        help="the judge: openai:MODEL@BASE_URL or local:MODEL_OR_PATH",
    )
    judge.add_argument("--output", required=True, metavar="DIR", help="folder for the report")
    add_arguments(judge, JudgeConfig)
    add_arguments(judge, BackendConfig)
    judge.set_defaults(run=run_judge)

    parser.set_defaults(run=lambda args: _usage(parser))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def run_ifeval(args: argparse.Namespace) -> int:
    config = from_namespace(IFEvalConfig, args)
    backend_config = from_namespace(BackendConfig, args)
    distributed = from_namespace(RayConfig, args)
    from tqdm import tqdm

    from codit.evaluation.ifeval import format_table, run_ifeval

    if config.model:  # a local model: transformers loads it
        from codit.cli.quiet import quiet_transformers

        quiet_transformers()
    bar: Any = None

    def on_generate(total: int) -> None:
        nonlocal bar
        print(f"codit: answering {total} prompts with {config.model}", file=sys.stderr)
        bar = tqdm(total=total, unit="prompt", disable=args.no_progress or None, file=sys.stderr)

    start = time.time()
    metrics, paths = run_ifeval(
        config,
        backend_config,
        progress=lambda n: bar.update(n),
        on_generate=on_generate,
        distributed=distributed,
    )
    if bar is not None:
        bar.close()
    print(format_table(metrics))
    if metrics["unmatched_responses"] or metrics["duplicate_responses"]:
        print(
            f"codit: {metrics['unmatched_responses']} responses matched no prompt and "
            f"{metrics['duplicate_responses']} repeated a prompt already answered; they were ignored",
            file=sys.stderr,
        )
    print(f"codit: evaluated in {time.time() - start:.1f}s", file=sys.stderr)
    for name, path in paths.items():
        print(f"codit: {name} -> {path}", file=sys.stderr)
    return 0


def run_judge(args: argparse.Namespace) -> int:
    config = from_namespace(JudgeConfig, args)
    backend_config = from_namespace(BackendConfig, args)
    output = Path(args.output)
    if backend_config.cache is None:  # a rerun after a crash then repeats no finished judgment
        backend_config = BackendConfig(
            **{**to_dict(backend_config), "cache": str(output / "cache.sqlite")}
        )
    from codit.backends.spec import open_backend, parse_spec
    from codit.evaluation.judge import format_summary, run_judge

    spec = parse_spec(args.judge)
    run = {
        "codit_version": __version__,
        "judge": str(spec),
        "a": args.a,
        "b": args.b,
        "config": to_dict(config),
        "backend": to_dict(backend_config),
    }
    start = time.time()
    print(f"codit: judging {args.a} against {args.b} with {spec}", file=sys.stderr)
    metrics = run_judge(
        Path(args.a), Path(args.b), lambda: open_backend(spec, backend_config), output, config, run
    )
    print(format_summary(metrics))
    print(f"codit: judged in {time.time() - start:.1f}s", file=sys.stderr)
    print(f"codit: judgments -> {output / 'judgments.jsonl'}", file=sys.stderr)
    print(f"codit: metrics -> {output / 'metrics.json'}", file=sys.stderr)
    return 0
