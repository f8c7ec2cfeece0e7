"""Peak host memory while ``codit.models.loading.load_model`` loads a model, against its weights.

Builds a random-weight checkpoint of a real shape locally (no downloads; stored in bfloat16
safetensors like hub checkpoints, sharded at 500 MB), then loads it in a fresh process per
setting (after a warm-up load of a toy checkpoint, so imports are not counted), touches every
weight as a first forward pass would, and reports, as multiples of the loaded weights' size,
the peak memory the load allocated (anonymous memory, sampled every 2 ms) and the peak
resident memory including the checkpoint's memory-mapped pages. Each setting is measured with
codit's ``load_model`` and, side by side, with transformers' own ``from_pretrained``.

    python benchmarks/load_memory.py --shape qwen2.5-0.5b --json benchmarks/results/load_memory.json

The target is a peak below 1.5x the weights: a model is read tensor by tensor onto its device
and dtype, never held twice in host memory. transformers 5 keeps every shard memory-mapped
until the last tensor is placed, so a float32 load of a bfloat16 checkpoint holds the float32
weights and every bfloat16 page at once (1.5x); ``load_model`` reads the tensors with ``pread``
(``codit.models.loading.read_by_pread``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from decode_throughput import SHAPES as DECODE_SHAPES  # noqa: E402  (one source of the shapes)

# the real shape measured, and a toy one for smoke runs (each built as a Qwen2 decoder)
SHAPES = {
    name: {k: v for k, v in DECODE_SHAPES[name].items() if k != "arch"}
    for name in ("qwen2.5-0.5b", "tiny")
}


def build_checkpoint(shape: str, out: Path) -> int:
    """Write a random-weight Qwen2 checkpoint of ``shape``; returns its parameter count."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(**SHAPES[shape], max_position_embeddings=4096)
    config.architectures = ["Qwen2ForCausalLM"]
    with torch.device("meta"):
        skeleton = Qwen2ForCausalLM(config)
    generator = torch.Generator().manual_seed(0)
    state = {
        n: (torch.randn(p.shape, generator=generator) * 0.02).to(torch.bfloat16)
        for n, p in skeleton.state_dict().items()
        if not (config.tie_word_embeddings and n == "lm_head.weight")
    }
    skeleton.load_state_dict(state, strict=False, assign=True)
    skeleton.tie_weights()
    skeleton.save_pretrained(out, max_shard_size="500MB")
    return sum(t.numel() for t in state.values())


LOAD = """
import json, sys, threading, time
import torch, transformers
from codit.models.loading import load_model

torch.set_num_threads(1)
path, dtype, reader, warmup = sys.argv[1:5]

def load(where):
    if reader == "codit":
        return load_model(where, device="cpu", dtype=dtype).model
    # transformers' own reading: every shard memory-mapped until the last tensor is placed
    return transformers.AutoModelForCausalLM.from_pretrained(
        where, dtype=getattr(torch, dtype), device_map={"": "cpu"}
    )

def status():
    out = {}
    for line in open("/proc/self/status"):
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
            out[key] = int(rest.split()[0]) * 1024
    return out

load(warmup)  # the modeling code and safetensors are imported once, not counted
before = status()
peak = {"anon": 0, "rss": 0}
done = threading.Event()

def sample():
    while not done.is_set():
        s = status()
        peak["anon"] = max(peak["anon"], s["RssAnon"])
        peak["rss"] = max(peak["rss"], s["RssAnon"] + s["RssFile"])
        time.sleep(0.002)

thread = threading.Thread(target=sample)
thread.start()
start = time.time()
model = load(path)
seconds = time.time() - start
# touch every weight, as the first forward pass would: memory-mapped pages become resident
# (a plain sum allocates no copy of the tensor, so the peak is the load's alone)
touched = sum(float(p.detach().sum()) for p in model.parameters())
done.set()
thread.join()
after = status()
weights = sum(p.numel() * p.element_size() for p in model.parameters())
print(json.dumps({"before": before, "after": after, "peak": peak, "weights": weights,
                  "seconds": round(seconds, 2), "touched": touched}))
"""


def measure(path: Path, dtype: str, reader: str, warmup: Path) -> dict[str, Any]:
    """Load in a fresh process (so no earlier allocation hides the peak).

    ``peak_rss`` counts the checkpoint's memory-mapped pages that the load touched (page cache
    the kernel can drop under pressure); ``peak_anon`` is the memory the load itself allocated.
    """
    out = (
        subprocess.run(
            [sys.executable, "-c", LOAD, str(path), dtype, reader, str(warmup)],
            check=True,
            capture_output=True,
            text=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    r = json.loads(out)
    weights = r["weights"]
    anon = max(r["peak"]["anon"], r["after"]["RssAnon"]) - r["before"]["RssAnon"]
    rss = max(r["after"]["VmHWM"], r["peak"]["rss"]) - r["before"]["VmRSS"]
    return {
        "dtype": dtype,
        "reader": reader,
        "weights_mb": round(weights / 2**20, 1),
        "peak_rss_added_mb": round(rss / 2**20, 1),
        "peak_rss_ratio": round(rss / weights, 3),
        "peak_anon_added_mb": round(anon / 2**20, 1),
        "peak_anon_ratio": round(anon / weights, 3),
        "seconds": r["seconds"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="qwen2.5-0.5b", choices=SHAPES)
    parser.add_argument("--dtypes", default="bfloat16,float32")
    parser.add_argument(
        "--readers",
        default="codit,transformers",
        help="codit: load_model; transformers: its own from_pretrained (mmap), side by side",
    )
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    load_before = [round(x, 2) for x in os.getloadavg()]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / args.shape
        start = time.time()
        params = build_checkpoint(args.shape, path)
        build_checkpoint("tiny", Path(tmp) / "toy")
        print(f"built {args.shape}: {params / 1e6:.1f}M parameters in {time.time() - start:.0f}s")
        rows = [
            measure(path, d, r, Path(tmp) / "toy")
            for d in args.dtypes.split(",")
            for r in args.readers.split(",")
        ]
    load_after = [round(x, 2) for x in os.getloadavg()]
    print(f"load average (1, 5, 15 min): {load_before} at the start, {load_after} at the end")
    for r in rows:
        print(
            f"{r['dtype']:>9} {r['reader']:>12}: weights {r['weights_mb']:7.1f} MB; peak added: allocated "
            f"{r['peak_anon_added_mb']:7.1f} MB = {r['peak_anon_ratio']:.2f}x, resident incl. "
            f"mapped checkpoint pages {r['peak_rss_added_mb']:7.1f} MB = "
            f"{r['peak_rss_ratio']:.2f}x; {r['seconds']:.1f}s"
        )
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(
            json.dumps(
                {
                    "shape": args.shape,
                    "parameters": params,
                    "checkpoint": "bfloat16 safetensors, 500 MB shards",
                    "results": rows,
                    "transformers": version("transformers"),
                    "safetensors": version("safetensors"),
                    "load_average_1_5_15min": {"start": load_before, "end": load_after},
                    "machine": platform.platform(),
                },
                indent=2,
            )
            + "\n"
        )


if __name__ == "__main__":
    main()
