"""Decoding throughput: one-model HF anchors vs codit direct vs codit contrastive, and the long tail.

Builds random-weight models from named shapes (no downloads; built on the target device in the
target dtype) and measures, in one process and side by side, tokens per second of:

- anchors, the instruct model alone in transformers: ``hf`` (``generate``, dynamic cache),
  ``hf_static`` (``generate(cache_implementation="static")``) and ``hf_batch``
  (``generate_batch``, continuous batching on a paged cache);
- ``direct``: codit's engine, instruct model alone;
- ``contrastive``: codit's engine, instruct + base model (CoDIT rule);

at each batch size, greedy, with a fixed number of new tokens (EOS ignored). Methods run in
turn, ``--repeats`` times, keeping the best time of each, so that background load hits all of
them alike (a run repeats its workload until ``--min-seconds`` have passed, mean per pass);
each engine's ratio is taken against the best anchor of the same cell.

Optional parts: ``--length-check 64,1024`` reruns one (shape, batch) cell at several response
lengths (contrastive must keep its speed as rows grow); ``--context-marks 512,1024,2048``
reports decode tokens/s inside each context window of the fixed run (from per-step
timestamps); the long-tail workload (log-normal prompt lengths, median ~70 up to 2k tokens,
and response lengths, median ~300 up to 2k; ``--quick`` scales it down for a CPU) compares
static with continuous batching in contrastive mode and reports the engine's peak K/V bytes
allocated vs held (``engine.kv_stats()``, "n/a" when the engine has none).

    python benchmarks/decode_throughput.py --threads 1 --length-check 64,1024 --quick \\
        --json benchmarks/results/decode_throughput_cpu.json

Contrastive decoding needs two forward passes per token, so contrastive/anchor sits near 0.5 on
the same hardware; on a CPU in float32 the engine's linear layers take each few-row product
(1 to 64 rows) in whichever of three GEMMs measured faster on this CPU (MKL either way round, or
oneDNN: ``codit.decoding.gemm``; the JSON's ``gemm_choices`` says which won where), where the
anchors always take MKL's, so there its ratios can pass 0.5 (contrastive) and 1.0 (direct).
The 8B shapes (``qwen3-8b``, ``llama3-8b``) run on a GPU only; see
``benchmarks/gpu.sh``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import resource
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from codit.decoding import gemm
from codit.decoding.config import DecodingConfig
from codit.decoding.engine import PairEngine, Request

SHAPES: dict[str, dict[str, Any]] = {
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
    # the shape of Qwen/Qwen3-8B(-Base): 8.2B parameters, 16.4 GB in bf16
    "qwen3-8b": dict(
        arch="qwen3",
        gpu_only=True,
        vocab_size=151936,
        hidden_size=4096,
        intermediate_size=12288,
        num_hidden_layers=36,
        num_attention_heads=32,
        num_key_value_heads=8,
        head_dim=128,
        tie_word_embeddings=False,
    ),
    # the shape of meta-llama/Llama-3.1-8B(-Instruct): 8.0B parameters, 16.1 GB in bf16
    "llama3-8b": dict(
        arch="llama",
        gpu_only=True,
        vocab_size=128256,
        hidden_size=4096,
        intermediate_size=14336,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=8,
        tie_word_embeddings=False,
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
ARCHS = {
    "llama": ("LlamaConfig", "LlamaForCausalLM"),
    "qwen2": ("Qwen2Config", "Qwen2ForCausalLM"),
    "qwen3": ("Qwen3Config", "Qwen3ForCausalLM"),
}
ANCHORS = ("hf", "hf_static", "hf_batch")
ENGINES = ("direct", "contrastive")


class NullTokenizer:
    """What the engine needs from a tokenizer when nobody reads the text."""

    pad_token_id = 0

    def decode(self, ids, skip_special_tokens=True):  # noqa: ARG002
        return ""


def build(shape: str, seed: int, device: torch.device, dtype: torch.dtype):
    """A random-weight model of ``shape``, created directly on ``device`` in ``dtype``."""
    import transformers

    spec = dict(SHAPES[shape])
    config_name, model_name = ARCHS[spec.pop("arch")]
    spec.pop("gpu_only", None)
    config = getattr(transformers, config_name)(max_position_embeddings=8192, **spec)
    torch.manual_seed(seed)
    with torch.device(device):
        model = getattr(transformers, model_name)._from_config(
            config, dtype=dtype, attn_implementation="sdpa"
        )
    return model.eval()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# ---- workloads --------------------------------------------------------------------------------


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


@dataclass(frozen=True)
class LongTail:
    """Log-normal prompt and response lengths (medians, caps, spread)."""

    prompts: int = 256
    prompt_median: int = 70
    prompt_max: int = 2048
    response_median: int = 300
    response_max: int = 2048
    sigma: float = 0.9


# The same shape with every length divided by 4: as many prompts and the same batch (so as many
# waves of rows), the same spread. (Before: 48 prompts at batch 16, medians and caps scaled by
# different factors; 3 waves, where the drain of the last rows bounds continuous/static.)
QUICK = LongTail(
    prompt_median=70 // 4, prompt_max=2048 // 4, response_median=300 // 4, response_max=2048 // 4
)


def long_tail_workload(spec: LongTail, vocab: int, seed: int) -> Workload:
    """Most prompts and responses short, a few very long (log-normal, clamped to the caps)."""
    g = torch.Generator().manual_seed(seed)

    def lognormal(median: int, hi: int) -> list[int]:
        values = median * torch.exp(spec.sigma * torch.randn(spec.prompts, generator=g))
        return values.round().clamp(1, hi).long().tolist()

    lengths = lognormal(spec.prompt_median, spec.prompt_max)
    prompts = [torch.randint(5, vocab, (k,), generator=g).tolist() for k in lengths]
    return Workload(prompts, lognormal(spec.response_median, spec.response_max))


# ---- timed runs -------------------------------------------------------------------------------


@dataclass
class Run:
    seconds: float
    step_times: list[float] = field(default_factory=list)  # after each generated token
    kv: dict | None = None


class _Clock:
    """Timestamps after each step (a forward hook or a logits processor calls it)."""

    def __init__(self, device: torch.device):
        self.device, self.times = device, []

    def __call__(self, *args):
        sync(self.device)
        self.times.append(time.perf_counter())
        return args[1] if len(args) == 2 else None  # a logits processor returns the scores


def make_engine(instruct, base, work: Workload, batch: int, continuous: bool) -> PairEngine:
    mode = "codit" if base is not None else "direct"
    config = DecodingConfig(mode=mode, temperature=0.0, max_new_tokens=max(work.max_new))
    return PairEngine(
        instruct,
        base,
        NullTokenizer(),
        config,
        stop_ids=[],
        vocab_size=instruct.config.vocab_size,
        batch_size=batch,
        continuous=continuous,
    )


def run_engine(instruct, base, work: Workload, batch: int, continuous: bool, device) -> Run:
    engine = make_engine(instruct, base, work, batch, continuous)
    requests = [
        Request(str(i), p, m)
        for i, (p, m) in enumerate(zip(work.prompts, work.max_new, strict=True))
    ]
    clock = _Clock(device)
    sync(device)
    start = time.perf_counter()
    if hasattr(engine, "step"):  # the incremental API: time each step
        for r in requests:
            engine.add(r)
        produced = 0
        while engine.has_work():
            out = engine.step()
            clock()
            produced += sum(c.completion_tokens for c in out.completions)
    else:  # time each instruct forward (one per step in the eager engine)
        hook = instruct.register_forward_hook(lambda *a: clock())
        try:
            produced = sum(c.completion_tokens for c in engine.generate(requests))
        finally:
            hook.remove()
    sync(device)
    seconds = time.perf_counter() - start
    assert produced == work.tokens, (produced, work.tokens)
    kv = engine.kv_stats() if hasattr(engine, "kv_stats") else None
    return Run(seconds, clock.times, kv)


@torch.inference_mode()
def run_hf(model, work: Workload, device, static: bool = False) -> Run:
    from transformers import LogitsProcessorList

    ids = torch.tensor(work.prompts, device=device)
    n = work.max_new[0]
    clock = _Clock(device)
    extra: dict[str, Any] = {"cache_implementation": "static"} if static else {}
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
        logits_processor=LogitsProcessorList([clock]),
        disable_compile=True,  # minutes of torch.compile would not fit the benchmark
        **extra,
    )
    sync(device)
    assert out.shape[1] == ids.shape[1] + n
    return Run(time.perf_counter() - start, clock.times)


@torch.inference_mode()
def run_hf_batch(model, work: Workload, batch: int, device) -> Run:
    """transformers' continuous batching; on CPU its paged cache is sized to the workload."""
    from transformers import GenerationConfig
    from transformers.generation.configuration_utils import ContinuousBatchingConfig

    n = max(work.max_new)
    page = 64
    sizing: dict[str, Any] = {}
    if device.type == "cpu":  # else it sizes the cache from free GPU memory
        longest = max(len(p) for p in work.prompts) + n
        sizing = dict(
            num_blocks=batch * math.ceil(longest / page) + 1,
            max_batch_tokens=max(256, min(4096, batch * longest)),
        )
    cb = ContinuousBatchingConfig(page_size=page, max_requests_per_batch=batch, **sizing)
    gen = GenerationConfig(
        max_new_tokens=n, min_new_tokens=n, do_sample=False, eos_token_id=-1, pad_token_id=0
    )
    sync(device)
    start = time.perf_counter()
    out = model.generate_batch(
        inputs=work.prompts,
        generation_config=gen,
        continuous_batching_config=cb,
        progress_bar=False,
        warmup=False,
    )
    sync(device)
    produced = sum(len(o.generated_tokens) for o in out.values())
    assert produced == work.tokens, (produced, work.tokens)
    return Run(time.perf_counter() - start)


def passes(fn, min_seconds: float) -> Run:
    """Run ``fn`` until ``min_seconds`` have passed (at least once); the mean seconds per pass.

    A cell of a small shape at batch 1 takes well under a second, where a burst of the host's
    load moves one run by several percent; averaging passes over a few seconds steadies it.
    The step times and K/V figures are the first and the last pass's.
    """
    first = fn()
    total, count, last = first.seconds, 1, first
    while total < min_seconds:
        last = fn()
        total += last.seconds
        count += 1
    return Run(total / count, first.step_times, last.kv)


def best_of(repeats: int, fns: dict, min_seconds: float = 0.0) -> dict[str, Run]:
    """Run each method in turn, ``repeats`` rounds; keep the fastest run of each (a run: passes
    of at least ``min_seconds`` in all)."""
    best: dict[str, Run] = {}
    for _ in range(repeats):
        for name, fn in fns.items():
            run = passes(fn, min_seconds)
            if torch.cuda.is_available():
                torch.cuda.empty_cache()  # one method's cache is not left in another's way
            if name not in best or run.seconds < best[name].seconds:
                best[name] = run
    return best


def window_tps(run: Run, batch: int, prompt_len: int, marks: list[int]) -> dict[str, float] | None:
    """Tokens/s inside each context window ending at a mark (the first starts after prefill).

    ``run.step_times[s - 1]`` is when token ``s`` of every row existed; the context then holds
    ``prompt_len + s`` tokens.
    """
    times = run.step_times
    if not marks or len(times) < max(marks) - prompt_len:
        return None
    out, prev = {}, 1
    for m in marks:
        s = m - prompt_len
        if s <= prev:
            continue
        out[str(m)] = round(batch * (s - prev) / (times[s - 1] - times[prev - 1]), 2)
        prev = s
    return out


# ---- the report -------------------------------------------------------------------------------


def cell(instruct, base, work, batch, device, methods, repeats, min_seconds=0.0) -> dict[str, Run]:
    fns = {  # called right away by best_of: binding the loop variables is safe
        "hf": lambda: run_hf(instruct, work, device),
        "hf_static": lambda: run_hf(instruct, work, device, static=True),
        "hf_batch": lambda: run_hf_batch(instruct, work, batch, device),
        "direct": lambda: run_engine(instruct, None, work, batch, True, device),
        "contrastive": lambda: run_engine(instruct, base, work, batch, True, device),
    }
    return best_of(repeats, {m: fns[m] for m in methods}, min_seconds)


def ratios(tps: dict[str, float]) -> dict[str, Any]:
    anchors = {k: v for k, v in tps.items() if k in ANCHORS}
    best = max(anchors, key=anchors.__getitem__) if anchors else None
    out: dict[str, Any] = {"best_anchor": best}
    out["best_anchor_tps"] = round(anchors[best], 2) if best else None
    for e in ENGINES:
        ok = best is not None and e in tps
        out[f"{e}_over_best"] = round(tps[e] / anchors[best], 3) if ok else None  # type: ignore[index]
    return out


def fmt(x: float | None, spec: str) -> str:
    return "n/a" if x is None else format(x, spec)


def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo, else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--shapes", default="small,qwen2.5-0.5b", help=f"comma list of {', '.join(SHAPES)}"
    )
    parser.add_argument("--batch-sizes", default="1,8,32")
    parser.add_argument("--new-tokens", type=int, default=32, help="per row, 1 to 2048")
    parser.add_argument("--prompt-len", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--min-seconds",
        type=float,
        default=2.0,
        help="a timed run repeats its workload until this long (mean per pass); 0: once",
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="auto", help="auto: bf16 on CUDA, fp32 on CPU")
    parser.add_argument("--anchors", default=",".join(ANCHORS), help="comma list of anchors")
    parser.add_argument("--methods", default=",".join(ENGINES), help="comma list of engines")
    parser.add_argument(
        "--context-marks", default="", help="e.g. 512,1024,2048: tokens/s per context window"
    )
    parser.add_argument(
        "--length-check", default="", help="e.g. 64,1024: rerun one cell at these new tokens"
    )
    parser.add_argument("--length-check-shape", default="small")
    parser.add_argument("--length-check-batch", type=int, default=8)
    parser.add_argument(
        "--length-check-methods", default="", help="comma list; default: the grid's methods"
    )
    parser.add_argument("--skip-long-tail", action="store_true")
    parser.add_argument("--quick", action="store_true", help="the small long-tail variant")
    parser.add_argument("--long-tail-shape", default="small")
    parser.add_argument("--long-tail-prompts", type=int, default=0, help="0: 256")
    parser.add_argument("--long-tail-batch", type=int, default=0, help="0: 32")
    parser.add_argument(
        "--long-tail-max-new", type=int, default=0, help="response cap; 0: 2048 (quick: 512)"
    )
    parser.add_argument(
        "--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)"
    )
    parser.add_argument("--json", help="also write the numbers to this JSON file")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    logging.getLogger("ContinuousBatchingLogger").setLevel(logging.ERROR)

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
    gpu_only = [s for s in shapes if SHAPES[s].get("gpu_only")]
    if gpu_only and device.type != "cuda":
        parser.error(
            f"the {', '.join(gpu_only)} shape(s) run on a GPU only (16 GB of weights per model "
            "in bf16); use --device cuda on a GPU machine, or the small/qwen2.5-0.5b shapes here"
        )
    if not 1 <= args.new_tokens <= 2048:
        parser.error(f"--new-tokens must be in [1, 2048], got {args.new_tokens}")
    methods = [m for m in args.anchors.split(",") + args.methods.split(",") if m]
    bad = [m for m in methods if m not in ANCHORS + ENGINES]
    if bad:
        parser.error(f"unknown methods {bad}; anchors {ANCHORS}, engines {ENGINES}")
    batches = [int(b) for b in args.batch_sizes.split(",")]
    marks = [int(m) for m in args.context_marks.split(",") if m]
    if marks and max(marks) > args.prompt_len + args.new_tokens:
        parser.error("--context-marks must not exceed --prompt-len + --new-tokens")
    lengths = [int(n) for n in args.length_check.split(",") if n]
    length_methods = [m for m in args.length_check_methods.split(",") if m] or methods
    if any(m not in methods for m in length_methods):
        parser.error("--length-check-methods must be among --anchors and --methods")
    where = (
        f"{cpu_name()}, {torch.get_num_threads()} threads"
        if device.type == "cpu"
        else torch.cuda.get_device_name(device)
    )
    load_start = os.getloadavg()
    print(
        f"device: {device} ({where}), dtype {str(dtype).removeprefix('torch.')}, "
        f"torch {torch.__version__}, load average {load_start[0]:.2f}"
    )

    results = []
    header = "".join(f"{m:>12}" for m in methods)
    print(f"{'shape':<14}{'batch':>6}{header}{'direct/best':>12}{'contr/best':>11}{'peak MB':>9}")
    length_scaling = None
    for shape in shapes:
        instruct = build(shape, 1, device, dtype)
        base = build(shape, 2, device, dtype) if "contrastive" in methods else None
        vocab = instruct.config.vocab_size
        warm = fixed_workload(2, 8, 4, vocab, 0)  # kernels and allocators, once per shape
        cell(instruct, base, warm, 2, device, methods, 1)
        for batch in batches:
            work = fixed_workload(batch, args.prompt_len, args.new_tokens, vocab, batch)
            runs = cell(
                instruct, base, work, batch, device, methods, args.repeats, args.min_seconds
            )
            tps = {k: work.tokens / r.seconds for k, r in runs.items()}
            row: dict[str, Any] = {
                "shape": shape,
                "batch_size": batch,
                "new_tokens": args.new_tokens,
                "hf_generate_tps": round(tps["hf"], 2) if "hf" in tps else None,
                "hf_static_tps": round(tps["hf_static"], 2) if "hf_static" in tps else None,
                "hf_batch_tps": round(tps["hf_batch"], 2) if "hf_batch" in tps else None,
                "direct_tps": round(tps["direct"], 2) if "direct" in tps else None,
                "contrastive_tps": round(tps["contrastive"], 2) if "contrastive" in tps else None,
            }
            for e in ENGINES:  # the old field, against the dynamic-cache generate
                ok = e in tps and "hf" in tps
                row[f"{e}_over_hf"] = round(tps[e] / tps["hf"], 3) if ok else None
            row.update(ratios(tps))
            row["peak_rss_mb" if device.type == "cpu" else "peak_gpu_mb"] = round(
                peak_memory_mb(device), 1
            )
            if marks:
                row["window_tps"] = {
                    k: window_tps(r, batch, args.prompt_len, marks) for k, r in runs.items()
                }
            results.append(row)
            cols = "".join(f"{tps[m]:>12.1f}" for m in methods)
            print(
                f"{shape:<14}{batch:>6}{cols}{fmt(row['direct_over_best'], '.3f'):>12}"
                f"{fmt(row['contrastive_over_best'], '.3f'):>11}{peak_memory_mb(device):>9.0f}",
                flush=True,
            )
            if marks:
                for k, w in row["window_tps"].items():
                    print(f"    {k:<12} tok/s by context: {w}")
        if lengths and shape == args.length_check_shape:
            b = args.length_check_batch
            per: dict[str, list[float]] = {m: [] for m in length_methods}
            for n in lengths:
                work = fixed_workload(b, args.prompt_len, n, vocab, 1000 + n)
                runs = cell(
                    instruct, base, work, b, device, length_methods, args.repeats, args.min_seconds
                )
                for m, r in runs.items():
                    per[m].append(round(work.tokens / r.seconds, 2))
            anchors_run = [m for m in length_methods if m in ANCHORS]
            best = [max(per[a][i] for a in anchors_run) for i in range(len(lengths))]
            length_scaling = {
                "shape": shape,
                "batch_size": b,
                "new_tokens": lengths,
                "tps": per,
                "last_over_first": {m: round(v[-1] / v[0], 3) for m, v in per.items()},
                "contrastive_over_best": [
                    round(c / a, 3) for c, a in zip(per.get("contrastive", []), best, strict=False)
                ],
            }
            print(f"length check ({shape}, batch {b}, new tokens {lengths}): {per}")
            print(f"    last/first: {length_scaling['last_over_first']}")
        del instruct, base

    long_tail = None
    if not args.skip_long_tail:
        spec = QUICK if args.quick else LongTail()
        if args.long_tail_prompts:
            spec = LongTail(**{**spec.__dict__, "prompts": args.long_tail_prompts})
        if args.long_tail_max_new:
            spec = LongTail(**{**spec.__dict__, "response_max": args.long_tail_max_new})
        b = args.long_tail_batch or 32
        instruct = build(args.long_tail_shape, 1, device, dtype)
        base = build(args.long_tail_shape, 2, device, dtype)
        work = long_tail_workload(spec, instruct.config.vocab_size, 7)
        static = run_engine(instruct, base, work, b, False, device)
        continuous = run_engine(instruct, base, work, b, True, device)
        kv = continuous.kv
        plens = sorted(len(p) for p in work.prompts)
        rlens = sorted(work.max_new)
        long_tail = {
            "shape": args.long_tail_shape,
            "prompts": len(work.prompts),
            "batch_size": b,
            "tokens": work.tokens,
            "prompt_len_median": plens[len(plens) // 2],
            "prompt_len_max": plens[-1],
            "response_len_median": rlens[len(rlens) // 2],
            "response_len_max": rlens[-1],
            "static_tps": round(work.tokens / static.seconds, 2),
            "continuous_tps": round(work.tokens / continuous.seconds, 2),
            "continuous_over_static": round(static.seconds / continuous.seconds, 3),
            "kv_stats": kv,
            "kv_definitions": {
                "allocated": "bytes the engine's K/V buffers occupy for rows, both models: "
                "per cohort, rows x capacity positions (headroom and unused rows included)",
                "held": "bytes of the K/V positions the rows actually hold, both models",
                "ratio": "peak allocated (taken at every buffer resize) over peak held "
                "(taken before every release), continuous run",
            },
            "kv_allocated_over_held": (
                round(kv["peak_allocated_bytes"] / kv["peak_held_bytes"], 3)
                if kv and kv.get("peak_held_bytes")
                else None
            ),
        }
        kv_text = (
            f"peak K/V allocated {kv['peak_allocated_bytes'] / 2**20:.1f} MiB vs held "
            f"{kv['peak_held_bytes'] / 2**20:.1f} MiB ({long_tail['kv_allocated_over_held']}x)"
            if long_tail["kv_allocated_over_held"]
            else "peak K/V allocated vs held: n/a (this engine has no kv_stats())"
        )
        print(
            f"long tail ({len(work.prompts)} prompts, prompt median {long_tail['prompt_len_median']} "
            f"max {plens[-1]}, response median {long_tail['response_len_median']} max {rlens[-1]}, "
            f"{work.tokens} tokens, batch {b}, contrastive): static {long_tail['static_tps']:.1f} "
            f"tok/s, continuous {long_tail['continuous_tps']:.1f} tok/s, ratio "
            f"{long_tail['continuous_over_static']:.2f}; {kv_text}"
        )

    load_end = os.getloadavg()
    print(f"load average at the end: {load_end[0]:.2f}")
    if args.json:
        report = {
            "device": str(device),
            "where": where,
            "dtype": str(dtype).removeprefix("torch."),
            "torch": torch.__version__,
            "new_tokens": args.new_tokens,
            "prompt_len": args.prompt_len,
            "repeats": args.repeats,
            "min_seconds": args.min_seconds,
            "load_avg_start": [round(x, 2) for x in load_start],
            "load_avg_end": [round(x, 2) for x in load_end],
            "results": results,
            "length_scaling": length_scaling,
            "long_tail": long_tail,
            # per row count, how many (layer shape, threads) chose each GEMM (codit.decoding.gemm)
            "gemm_choices": {
                rows: dict(zip(gemm.NAMES, n, strict=True)) for rows, n in gemm.chosen().items()
            },
        }
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
