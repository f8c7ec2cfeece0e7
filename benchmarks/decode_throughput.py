"""Decoding throughput: HF generate vs codit direct vs codit contrastive, and the long tail.

Builds random-weight models from named shapes (no downloads) and measures, in one process and
side by side, tokens per second of:

- ``hf_generate``: ``model.generate`` with the instruct model alone (greedy, fixed length);
- ``direct``: codit's engine, instruct model alone;
- ``contrastive``: codit's engine, instruct + base model (CoDIT rule);

at each batch size, with a fixed number of new tokens (no early stop). Methods are run in turn,
``--repeats`` times, and the best time of each is kept, so that background load hits all of them
alike. Then a long-tail workload (256 prompts, heavy-tailed prompt lengths and max new tokens)
compares static batching with continuous batching in contrastive mode.

    python benchmarks/decode_throughput.py --shapes small,qwen2.5-0.5b --batch-sizes 1,8,32 \\
        --new-tokens 32 --json out/bench.json

The ratios are the point: contrastive decoding needs two forward passes per token, so
contrastive/hf_generate cannot exceed 0.5 on the same hardware.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import time
from dataclasses import dataclass

import torch

from codit.decoding.config import DecodingConfig
from codit.decoding.engine import PairEngine, Request

SHAPES = {
    # ~58M parameters: a Llama-style decoder with a 32k vocabulary
    "small": dict(
        arch="llama",
        vocab_size=32000,
        hidden_size=512,
        intermediate_size=1408,
        num_hidden_layers=8,
        num_attention_heads=8,
        num_key_value_heads=8,
        tie_word_embeddings=False,
    ),
    # the shape of Qwen/Qwen2.5-0.5B(-Instruct): 494M parameters
    "qwen2.5-0.5b": dict(
        arch="qwen2",
        vocab_size=151936,
        hidden_size=896,
        intermediate_size=4864,
        num_hidden_layers=24,
        num_attention_heads=14,
        num_key_value_heads=2,
        tie_word_embeddings=True,
    ),
    # a toy shape for smoke runs of this script
    "tiny": dict(
        arch="llama",
        vocab_size=1000,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        tie_word_embeddings=False,
    ),
}


class NullTokenizer:
    """What the engine needs from a tokenizer when nobody reads the text."""

    pad_token_id = 0

    def decode(self, ids, skip_special_tokens=True):  # noqa: ARG002
        return ""


def build(shape: str, seed: int, device: torch.device, dtype: torch.dtype):
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    spec = dict(SHAPES[shape])
    arch = spec.pop("arch")
    torch.manual_seed(seed)
    config_cls, model_cls = (
        (LlamaConfig, LlamaForCausalLM) if arch == "llama" else (Qwen2Config, Qwen2ForCausalLM)
    )
    config = config_cls(max_position_embeddings=4096, attn_implementation="sdpa", **spec)
    model = model_cls(config).to(device=device, dtype=dtype).eval()
    return model


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


@dataclass
class Workload:
    prompts: list[list[int]]
    max_new: list[int]

    @property
    def tokens(self) -> int:
        return sum(self.max_new)


def fixed_workload(batch: int, prompt_len: int, new_tokens: int, vocab: int, seed: int) -> Workload:
    g = torch.Generator().manual_seed(seed)
    prompts = torch.randint(5, vocab, (batch, prompt_len), generator=g).tolist()
    return Workload(prompts, [new_tokens] * batch)


def long_tail_workload(n: int, vocab: int, seed: int, max_prompt: int, max_new: int) -> Workload:
    """Pareto-distributed prompt lengths and response lengths: most short, a few very long."""
    g = torch.Generator().manual_seed(seed)

    def heavy(lo: int, hi: int) -> list[int]:
        u = torch.rand(n, generator=g)
        values = lo / (1 - u) ** (1 / 1.2)  # Pareto, shape 1.2
        return values.clamp(max=hi).long().tolist()

    lengths = heavy(8, max_prompt)
    prompts = [torch.randint(5, vocab, (k,), generator=g).tolist() for k in lengths]
    return Workload(prompts, heavy(4, max_new))


def run_engine(instruct, base, work: Workload, batch: int, continuous: bool, device) -> float:
    mode = "codit" if base is not None else "direct"
    config = DecodingConfig(mode=mode, temperature=0.0, max_new_tokens=max(work.max_new))
    engine = PairEngine(
        instruct,
        base,
        NullTokenizer(),
        config,
        stop_ids=[],
        vocab_size=instruct.config.vocab_size,
        batch_size=batch,
        continuous=continuous,
    )
    requests = [
        Request(str(i), p, m)
        for i, (p, m) in enumerate(zip(work.prompts, work.max_new, strict=True))
    ]
    sync(device)
    start = time.perf_counter()
    produced = sum(c.completion_tokens for c in engine.generate(requests))
    sync(device)
    assert produced == work.tokens, (produced, work.tokens)
    return time.perf_counter() - start


@torch.inference_mode()
def run_hf(model, work: Workload, device) -> float:
    ids = torch.tensor(work.prompts, device=device)
    n = work.max_new[0]
    sync(device)
    start = time.perf_counter()
    out = model.generate(
        ids,
        attention_mask=torch.ones_like(ids),
        max_new_tokens=n,
        min_new_tokens=n,
        do_sample=False,
        pad_token_id=0,
        eos_token_id=None,
    )
    sync(device)
    assert out.shape[1] == ids.shape[1] + n
    return time.perf_counter() - start


def best_of(repeats: int, fns: dict) -> dict[str, float]:
    """Run each method in turn, ``repeats`` rounds; keep the best time of each."""
    times = {k: float("inf") for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            times[name] = min(times[name], fn())
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--shapes", default="small,qwen2.5-0.5b", help=f"comma list of {', '.join(SHAPES)}"
    )
    parser.add_argument("--batch-sizes", default="1,8,32")
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--prompt-len", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="auto", help="auto: bf16 on CUDA, fp32 on CPU")
    parser.add_argument("--skip-long-tail", action="store_true")
    parser.add_argument("--long-tail-shape", default="small")
    parser.add_argument("--long-tail-prompts", type=int, default=256)
    parser.add_argument("--long-tail-batch", type=int, default=32)
    parser.add_argument("--long-tail-max-new", type=int, default=256)
    parser.add_argument(
        "--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)"
    )
    parser.add_argument("--json", help="also write the numbers to this JSON file")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    device = torch.device(
        "cuda"
        if args.device == "auto" and torch.cuda.is_available()
        else ("cpu" if args.device == "auto" else args.device)
    )
    dtype = {
        "auto": torch.bfloat16 if device.type == "cuda" else torch.float32,
        "float32": torch.float32,
        "bfloat16": torch.bfloat16,
        "float16": torch.float16,
    }[args.dtype]
    shapes = [s for s in args.shapes.split(",") if s]
    unknown = [s for s in shapes if s not in SHAPES]
    if unknown:
        parser.error(f"unknown shapes {unknown}; known: {', '.join(SHAPES)}")
    batches = [int(b) for b in args.batch_sizes.split(",")]
    where = (
        f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
        if device.type == "cpu"
        else torch.cuda.get_device_name(device)
    )
    print(
        f"device: {device} ({where}), dtype {str(dtype).removeprefix('torch.')}, torch {torch.__version__}"
    )

    results = []
    header = f"{'shape':<14}{'batch':>6}{'hf tok/s':>11}{'direct':>10}{'contrast':>10}{'direct/hf':>11}{'contr/hf':>10}{'peak MB':>10}"
    print(header)
    for shape in shapes:
        instruct = build(shape, 1, device, dtype)
        base = build(shape, 2, device, dtype)
        vocab = instruct.config.vocab_size
        # warm up kernels and allocators once per shape
        warm = fixed_workload(2, 8, 4, vocab, 0)
        run_hf(instruct, warm, device)
        run_engine(instruct, base, warm, 2, True, device)
        for batch in batches:
            work = fixed_workload(batch, args.prompt_len, args.new_tokens, vocab, batch)
            times = best_of(
                args.repeats,
                {  # called right away: binding the loop variables is safe
                    "hf": lambda: run_hf(instruct, work, device),  # noqa: B023
                    "direct": lambda: run_engine(instruct, None, work, batch, True, device),  # noqa: B023
                    "contrastive": lambda: run_engine(instruct, base, work, batch, True, device),  # noqa: B023
                },
            )
            tps = {k: work.tokens / t for k, t in times.items()}
            row = {
                "shape": shape,
                "batch_size": batch,
                "hf_generate_tps": round(tps["hf"], 2),
                "direct_tps": round(tps["direct"], 2),
                "contrastive_tps": round(tps["contrastive"], 2),
                "direct_over_hf": round(tps["direct"] / tps["hf"], 3),
                "contrastive_over_hf": round(tps["contrastive"] / tps["hf"], 3),
                "peak_rss_mb" if device.type == "cpu" else "peak_gpu_mb": round(
                    peak_memory_mb(device), 1
                ),
            }
            results.append(row)
            print(
                f"{shape:<14}{batch:>6}{tps['hf']:>11.1f}{tps['direct']:>10.1f}{tps['contrastive']:>10.1f}"
                f"{row['direct_over_hf']:>11.3f}{row['contrastive_over_hf']:>10.3f}{peak_memory_mb(device):>10.0f}",
                flush=True,
            )
        del instruct, base

    long_tail = None
    if not args.skip_long_tail:
        instruct = build(args.long_tail_shape, 1, device, dtype)
        base = build(args.long_tail_shape, 2, device, dtype)
        work = long_tail_workload(
            args.long_tail_prompts, instruct.config.vocab_size, 7, 256, args.long_tail_max_new
        )
        b = args.long_tail_batch
        static = run_engine(instruct, base, work, b, False, device)
        continuous = run_engine(instruct, base, work, b, True, device)
        long_tail = {
            "shape": args.long_tail_shape,
            "prompts": len(work.prompts),
            "batch_size": b,
            "tokens": work.tokens,
            "static_tps": round(work.tokens / static, 2),
            "continuous_tps": round(work.tokens / continuous, 2),
            "continuous_over_static": round(static / continuous, 3),
        }
        print(
            f"long tail ({len(work.prompts)} prompts, {work.tokens} tokens, batch {b}, contrastive): "
            f"static {long_tail['static_tps']:.1f} tok/s, continuous {long_tail['continuous_tps']:.1f} tok/s, "
            f"ratio {long_tail['continuous_over_static']:.2f}"
        )

    if args.json:
        report = {
            "device": str(device),
            "where": where,
            "dtype": str(dtype).removeprefix("torch."),
            "new_tokens": args.new_tokens,
            "prompt_len": args.prompt_len,
            "results": results,
            "long_tail": long_tail,
        }
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
