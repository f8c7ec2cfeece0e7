"""Peak memory of reading and of resuming a large prompt input: flat in the number of prompts?

Writes local Parquet prompt files of each ``--sizes`` (default 100k and 1M prompts, ~20 words
each) and, in a fresh process per measurement, records the peak resident set size
(``ru_maxrss``) of:

- ``imports``: the interpreter with codit's generate path, pyarrow and datasets imported
  (the floor every run pays);
- ``read``: both input passes of ``codit generate`` (check every row, then hand out every prompt)
  with ``--dedup --first-turn --min-chars 1``, without any model;
- ``resume``: ``codit generate`` itself on an output that already holds all but the last 1,000
  records (so it reads every done id, both input passes, and writes the 1,000), with the
  engine replaced by an echo (no model), as a rerun after a crash does.

    python benchmarks/input_memory.py --sizes 100000,1000000 --json benchmarks/results/input_memory.json

What grows with the file is reported as bytes per prompt: (peak at the larger size - peak at
the smaller) / (difference in prompts).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORDS = [
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "a",
    "lazy",
    "dog",
    "while",
    "small",
    "models",
    "answer",
    "every",
    "question",
    "about",
    "rivers",
    "towns",
    "apples",
    "pears",
    "numbers",
    "letters",
    "stories",
    "poems",
    "code",
    "tests",
    "data",
    "sets",
    "prompts",
]
TAIL = 1000  # records a resumed run still has to write


def write_prompts(path: Path, n: int, seed: int = 0) -> None:
    """``n`` prompts ``{"id", "prompt"}`` as Parquet, written in row groups of 100k."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = random.Random(seed)
    writer = None
    for start in range(0, n, 100_000):
        stop = min(n, start + 100_000)
        ids = [f"p{i:08d}" for i in range(start, stop)]
        prompts = [" ".join(rng.choices(WORDS, k=20)) + f" {i}" for i in range(start, stop)]
        table = pa.table({"id": ids, "prompt": prompts})
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    assert writer is not None
    writer.close()


def write_done(output: Path, n: int) -> None:
    """An output holding the first ``n - TAIL`` records, as a crashed run leaves it."""
    with output.open("w") as handle:
        for i in range(n - TAIL):
            record = {
                "id": f"p{i:08d}",
                "messages": [
                    {"role": "user", "content": "x"},
                    {"role": "assistant", "content": "y"},
                ],
                "meta": {"finish_reason": "stop", "completion_tokens": 1},
            }
            handle.write(json.dumps(record) + "\n")


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(kind: str, parquet: str, output: str) -> dict[str, float]:
    import datasets  # noqa: F401  (the floor includes what an hf: input imports)
    import pyarrow.parquet  # noqa: F401

    from codit.decoding.config import DecodingConfig
    from codit.generation.config import GenerateConfig
    from codit.io.filters import PromptFilters
    from codit.io.manifest import environment

    environment()  # imports torch and transformers, as every generate run does

    config = GenerateConfig(
        input=parquet,
        output=output,
        decoding=DecodingConfig(mode="direct"),
        filters=PromptFilters(dedup=True, first_turn=True, min_chars=1),
    )
    start = time.time()
    seen = 0
    if kind == "read":
        from codit.generation.inputs import pending_prompts, plan_inputs

        plan = plan_inputs(config)
        seen = sum(1 for _ in pending_prompts(config, plan, set()))
        assert seen == plan.inputs
    elif kind == "resume":
        import codit.generation.run as run
        from codit.decoding.engine import Completion

        def echo(config, conversations, record_models):  # the engine, minus the model
            record_models({"instruct": {"name": "echo"}})
            for key, _ in conversations:
                yield Completion(key, "ok", [1], "stop", 1, 1)

        run.local_completions = echo
        summary = run.generate(config)
        seen = summary.written
        assert summary.written == TAIL, summary
    return {"peak_mib": round(_peak_mib(), 1), "seconds": round(time.time() - start, 1), "n": seen}


def measure(kind: str, parquet: Path, output: Path) -> dict[str, float]:
    cmd = [
        sys.executable,
        __file__,
        "--child",
        kind,
        "--parquet",
        str(parquet),
        "--output",
        str(output),
    ]
    out = subprocess.run(
        cmd, capture_output=True, text=True, check=True, env=os.environ | {"OMP_NUM_THREADS": "1"}
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--child", choices=("imports", "read", "resume"))
    parser.add_argument("--parquet")
    parser.add_argument("--output")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.parquet, args.output)))
        return 0
    sizes = [int(s) for s in args.sizes.split(",")]
    results: dict[str, dict[str, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            parquet = Path(tmp) / f"prompts_{n}.parquet"
            write_prompts(parquet, n)
            output = Path(tmp) / f"out_{n}.jsonl"
            row = {"file_mib": round(parquet.stat().st_size / 2**20, 1)}
            for kind in ("imports", "read", "resume"):
                if kind == "resume":
                    write_done(output, n)
                row[kind] = measure(kind, parquet, output)
                print(f"{n:>9} prompts  {kind:<8} {row[kind]}", flush=True)
            results[str(n)] = row
            for leftover in Path(tmp).iterdir():
                leftover.unlink()
    small, large = str(sizes[0]), str(sizes[-1])
    growth = {
        kind: round(
            (results[large][kind]["peak_mib"] - results[small][kind]["peak_mib"])
            * 2**20
            / (sizes[-1] - sizes[0]),
            1,
        )
        for kind in ("imports", "read", "resume")
    }
    print(f"growth, bytes per prompt: {growth}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "results": results,
                    "bytes_per_prompt": growth,
                    "machine": platform.platform(),
                    "load_average": os.getloadavg(),
                },
                indent=2,
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
