"""One cell, paired: an HF anchor and codit direct alternate, round after round.

``decode_throughput.py`` keeps each method's best run; on a shared host a cell where the two are
at parity can read a few percent either way from one run to the next. Alternating the two, one
run each per round, and reading the ratio of every round shows whether a gap is systematic (the
same sign every round) or noise.

    python benchmarks/paired_direct.py --shape qwen2.5-0.5b --batch 1 --rounds 8 --anchor hf_static
"""

from __future__ import annotations

import argparse
import statistics
import sys

import torch
from decode_throughput import SHAPES, build, fixed_workload, run_engine, run_hf


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cpu_shapes = [s for s, spec in SHAPES.items() if not spec.get("gpu_only")]
    parser.add_argument("--shape", default="small", choices=cpu_shapes)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--prompt-len", type=int, default=32)
    parser.add_argument("--anchor", default="hf_static", choices=["hf", "hf_static"])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    model = build(args.shape, 1, device, torch.float32)
    vocab = model.config.vocab_size
    work = fixed_workload(args.batch, args.prompt_len, args.new_tokens, vocab, args.batch)
    warm = fixed_workload(2, 8, 4, vocab, 0)
    static = args.anchor == "hf_static"
    run_hf(model, warm, device, static=static)
    run_engine(model, None, warm, 2, True, device)
    ratios = []
    for r in range(args.rounds):
        anchor = run_hf(model, work, device, static=static).seconds
        direct = run_engine(model, None, work, args.batch, True, device).seconds
        ratios.append(anchor / direct)
        print(
            f"round {r}: {args.anchor} {work.tokens / anchor:.3f} direct "
            f"{work.tokens / direct:.3f} tok/s, direct/{args.anchor} {anchor / direct:.3f}",
            flush=True,
        )
    print(
        f"direct/{args.anchor} over {args.rounds} rounds: median {statistics.median(ratios):.3f}, "
        f"min {min(ratios):.3f}, max {max(ratios):.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
