"""``make demo``: the built-in tiny pair answers toy prompts directly and with CoDIT.

Runs ``codit generate`` twice on ``examples/toy_prompts.jsonl`` (no model arguments, so the
built-in ``tiny-instruct`` and, for CoDIT, ``tiny-base`` are used), greedy so that every run
prints the same answers, then shows the two answers to each prompt side by side and where the
records are, and ends with ``codit compare`` on the two outputs (lengths, finish reasons,
distinct-n, the IFEval checks the toy prompts carry). Takes well under a minute on two CPU cores.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROMPTS = ROOT / "examples" / "toy_prompts.jsonl"
OUT = ROOT / "out" / "demo"
MODES = ("direct", "codit")
WIDTH = 48  # characters per column
MAX_LINES = 12  # lines per answer shown


def generate(mode: str) -> Path:
    """Run ``codit generate`` in ``mode`` into a fresh ``out/demo/<mode>.jsonl``."""
    output = OUT / f"{mode}.jsonl"
    for stale in (
        output,
        output.with_suffix(".manifest.json"),
        output.with_suffix(".errors.jsonl"),
    ):
        stale.unlink(missing_ok=True)  # a rebuilt pair must not meet old records
    command = [
        sys.executable,
        "-m",
        "codit",
        "generate",
        "--input",
        str(PROMPTS),
        "--output",
        str(output),
        "--mode",
        mode,
        "--temperature",
        "0",
        "--max-new-tokens",
        "160",
        "--batch-size",
        "8",
        "--no-progress",
    ]
    print(
        f"$ codit generate --mode {mode} --input {PROMPTS.relative_to(ROOT)} "
        f"--output {output.relative_to(ROOT)} --temperature 0",
        flush=True,
    )
    subprocess.run(command, check=True, cwd=ROOT)
    return output


def compare(direct: Path, codit: Path) -> Path:
    """Run ``codit compare`` on the two outputs into ``out/demo/compare``."""
    output = OUT / "compare"
    print(
        f"$ codit compare {direct.relative_to(ROOT)} {codit.relative_to(ROOT)} "
        f"--labels direct,codit --output {output.relative_to(ROOT)}",
        flush=True,
    )
    command = [sys.executable, "-m", "codit", "compare", str(direct), str(codit)]
    command += ["--labels", "direct,codit", "--output", str(output)]
    subprocess.run(command, check=True, cwd=ROOT)
    return output / "report.md"


def answers(path: Path) -> dict[str, str]:
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {r["id"]: r["messages"][-1]["content"] for r in records}


def column(text: str) -> list[str]:
    lines = [
        piece
        for paragraph in text.splitlines()
        for piece in (textwrap.wrap(paragraph, WIDTH) or [""])
    ]
    return lines[:MAX_LINES] + (["..."] if len(lines) > MAX_LINES else [])


def side_by_side(left: str, right: str) -> str:
    a, b = column(left), column(right)
    rows = max(len(a), len(b))
    a += [""] * (rows - len(a))
    b += [""] * (rows - len(b))
    return "\n".join(f"  {x:<{WIDTH}} | {y}" for x, y in zip(a, b, strict=True))


def main() -> int:
    outputs = {mode: generate(mode) for mode in MODES}
    direct, codit = (answers(outputs[m]) for m in MODES)
    prompts = [json.loads(line) for line in PROMPTS.read_text().splitlines() if line.strip()]
    print()
    for prompt in prompts:
        print("=" * (2 * WIDTH + 5))
        print(textwrap.fill(f"[{prompt['id']}] {prompt['prompt']}", 2 * WIDTH + 5))
        print(f"  {'tiny-instruct, direct':<{WIDTH}} | tiny-instruct, CoDIT (vs tiny-base)")
        print(f"  {'-' * WIDTH} | {'-' * WIDTH}")
        print(
            side_by_side(
                direct.get(prompt["id"], "(missing)"), codit.get(prompt["id"], "(missing)")
            )
        )
    print("=" * (2 * WIDTH + 5))
    for mode, path in outputs.items():
        print(
            f"{mode:>6} records: {path.relative_to(ROOT)} (manifest: {path.with_suffix('.manifest.json').relative_to(ROOT)})"
        )
    print()
    report = compare(outputs["direct"], outputs["codit"])
    print(f"Comparison report: {report.relative_to(ROOT)} (metrics.json and plots next to it)")
    print("Score the pair on the held-out instructions with: codit tiny eval")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
