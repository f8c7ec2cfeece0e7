"""Throughput of ``codit generate --ray`` against the number of workers, on random tiny pairs.

Builds an instruct/base pair of random Llama models with the tests' locally trained tokenizer
(``tests/tiny_models.py``; no downloads), then answers the same prompts greedily in CoDIT mode,
once per configuration of ``--configs``:

- ``local``: in this process, torch's default thread count (what ``codit generate`` does);
- ``local1``: in this process, one torch thread;
- ``rayN``: on a local Ray instance with N CPU workers, one core and one model pair each.

Configurations run in turn, ``--repeats`` times, and the best of each is kept, so that background
load hits all of them alike. Two numbers per run: ``seconds`` is the run's decoding time as its
manifest records it (on Ray it includes starting the workers and loading their models, which is
what a user waits for); ``steady tok/s`` counts only the tokens that arrive after the first
record, over the time after it, so worker start-up drops out.

    python benchmarks/ray_scaling.py --prompts 256 --new-tokens 64 --configs local,local1,ray1,ray2

Every configuration must produce the same tokens (greedy), so they compare like for like. On a
machine with C free cores, more than C CPU workers cannot help.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import tiny_models  # noqa: E402
from codit.decoding.config import DecodingConfig  # noqa: E402
from codit.distributed.config import RayConfig  # noqa: E402
from codit.generation.config import GenerateConfig  # noqa: E402
from codit.generation.run import generate  # noqa: E402

PROMPTS = [
    "hello fox",
    "write three bullet points about apples",
    "the base model knows facts",
    "a small model answers",
    "all lowercase letters please",
]


def save_pair(root: Path, dim: int, layers: int) -> tuple[Path, Path]:
    tokenizer = tiny_models.make_tokenizer()
    paths = []
    for name, seed in (("instruct", 1), ("base", 2)):
        path = root / name
        tiny_models.make_model(tokenizer, seed, layers=layers, dim=dim).save_pretrained(path)
        tokenizer.save_pretrained(path)
        paths.append(path)
    return paths[0], paths[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--new-tokens", type=int, default=48)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--dim", type=int, default=32, help="hidden size of the random pair")
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument(
        "--configs", default="local,ray1,ray2", help="local, local1 and rayN, comma-separated"
    )
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", help="write the results here too")
    args = parser.parse_args()
    configs = args.configs.split(",")

    import ray
    import torch
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    workers = [int(c[3:]) for c in configs if c.startswith("ray")]
    ray.init(
        address="local",
        num_cpus=max(workers, default=1),
        include_dashboard=False,
        logging_level=logging.WARNING,
    )
    root = Path(tempfile.mkdtemp(prefix="codit-ray-bench-"))
    instruct, base = save_pair(root, args.dim, args.layers)
    prompts = root / "prompts.jsonl"
    prompts.write_text(
        "".join(
            json.dumps({"id": f"p{i}", "prompt": f"{PROMPTS[i % len(PROMPTS)]} {i}"}) + "\n"
            for i in range(args.prompts)
        )
    )
    default_threads = torch.get_num_threads()
    best: dict[str, dict] = {}
    for repeat in range(args.repeats):
        for name in configs:
            torch.set_num_threads(1 if name == "local1" else default_threads)
            distributed = (
                RayConfig(ray=True, num_workers=int(name[3:]))
                if name.startswith("ray")
                else RayConfig()
            )
            config = GenerateConfig(
                input=str(prompts),
                output=str(root / f"{name}-{repeat}.jsonl"),
                instruct=str(instruct),
                base=str(base),
                batch_size=args.batch_size,
                device="cpu",
                decoding=DecodingConfig(temperature=0.0, max_new_tokens=args.new_tokens),
                distributed=distributed,
            )
            arrivals: list[tuple[float, int]] = []
            summary = generate(
                config,
                on_progress=lambda _done, tokens, log=arrivals: log.append((time.time(), tokens)),
            )
            steady = (arrivals[-1][1] - arrivals[0][1]) / max(
                arrivals[-1][0] - arrivals[0][0], 1e-9
            )
            result = {
                "seconds": round(summary.decode_seconds, 2),
                "tokens": summary.completion_tokens,
                "tokens_per_second": round(summary.tokens_per_second, 1),
                "steady_tokens_per_second": round(steady, 1),
            }
            print(f"repeat {repeat} {name:7} {result}", file=sys.stderr)
            if name not in best or result["seconds"] < best[name]["seconds"]:
                best[name] = result
    ray.shutdown()
    if len({r["tokens"] for r in best.values()}) != 1:
        raise SystemExit(f"the configurations made different numbers of tokens: {best}")
    print(
        f"{args.prompts} prompts x {args.new_tokens} new tokens, pair dim {args.dim} x {args.layers} layers, "
        f"batch {args.batch_size}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}, "
        f"torch default threads {default_threads}"
    )
    print(f"{'run':8} {'seconds':>8} {'tok/s':>8} {'steady tok/s':>13}")
    for name, r in best.items():
        print(
            f"{name:8} {r['seconds']:8.2f} {r['tokens_per_second']:8.1f} {r['steady_tokens_per_second']:13.1f}"
        )
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {"args": vars(args), "platform": platform.platform(), "results": best}, indent=2
            )
            + "\n"
        )


if __name__ == "__main__":
    main()
