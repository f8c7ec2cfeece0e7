"""Helpers of the dataset tests: a hub-like local dataset folder (LMSYS-shaped conversations),
an offline ``datasets`` setup, and the generate arguments that read it."""

from __future__ import annotations

import json
from pathlib import Path

N = 24


def conversation(i: int) -> list[dict[str, str]]:
    """LMSYS-like: every third conversation has two user turns; id 5 repeats id 4's prompt."""
    first = "tell me about apples" if i == 4 else f"question number {i} about the river town"
    if i == 5:
        first = "Tell me  about APPLES"  # equal to 4's after normalisation
    turns = [{"role": "user", "content": first}, {"role": "assistant", "content": "an old answer"}]
    if i % 3 == 0:
        turns += [
            {"role": "user", "content": f"and a follow-up {i}"},
            {"role": "assistant", "content": "x"},
        ]
    return turns


def write_folder(root: Path) -> Path:
    """A dataset folder as the hub lays it out: data/train-*.parquet in two shards, a test split."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    (root / "data").mkdir(parents=True)
    rows = [{"conversation_id": f"c{i:02d}", "conversation": conversation(i)} for i in range(N)]
    pq.write_table(pa.Table.from_pylist(rows[:10]), root / "data" / "train-00000-of-00002.parquet")
    pq.write_table(pa.Table.from_pylist(rows[10:]), root / "data" / "train-00001-of-00002.parquet")
    pq.write_table(pa.Table.from_pylist(rows[:2]), root / "data" / "test-00000-of-00001.parquet")
    return root


# kept with --first-turn --dedup: every id but c05 (same prompt as c04 once normalised)
EXPECTED = sorted(f"c{i:02d}" for i in range(N) if i != 5)


def go_offline(monkeypatch, tmp_path: Path) -> None:
    """No hub access; datasets' cache in the test's folder."""
    import datasets

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")


def args(pair_dirs, inp: str, out: Path, *extra: str) -> list[str]:
    instruct, base = pair_dirs
    return [
        "generate", "--instruct", str(instruct), "--base", str(base), "--input", inp,
        "--output", str(out), "--max-new-tokens", "4", "--no-progress",
        "--prompt-field", "conversation", "--id-field", "conversation_id", *extra,
    ]  # fmt: skip


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]
