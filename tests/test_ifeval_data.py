"""Where ``codit eval ifeval`` finds its prompts without ``--input-data``: the cached public
dataset, or one sentence saying both ways when it is offline with an empty cache."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from codit.errors import DataError, OutOfSpace
from codit.evaluation import ifeval_data
from codit.evaluation.ifeval import IFEvalConfig, run_ifeval

PROMPT = {
    "key": 7,
    "prompt": "Write a haiku without commas.",
    "instruction_id_list": ["punctuation:no_comma"],
    # the hub copy lists every argument of every instruction, None where unused
    "kwargs": [{"num_words": None, "relation": None}],
}


def test_offline_with_an_empty_cache_says_both_ways(tmp_path: Path) -> None:
    responses = tmp_path / "r.jsonl"
    responses.write_text(json.dumps({"key": 7, "response": "Quiet pond"}) + "\n")
    src = Path(__file__).resolve().parents[1] / "src"
    env = {
        **os.environ,
        "HF_DATASETS_OFFLINE": "1",
        "HF_HUB_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf"),
        "HF_DATASETS_CACHE": str(tmp_path / "hf" / "datasets"),
        "PYTHONPATH": str(src),
    }
    done = subprocess.run(
        [sys.executable, "-m", "codit", "eval", "ifeval", "--responses", str(responses),
         "--output", str(tmp_path / "out")],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == DataError.exit_code, done.stderr
    message = done.stderr.strip().splitlines()[-1]
    assert "--input-data FILE" in message and "network access" in message
    assert "google/IFEval" in message and "offline" in message
    assert "Traceback" not in done.stderr and not (tmp_path / "out").exists()


def test_default_reads_the_cached_copy_and_input_data_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cached = tmp_path / "cache" / "codit-ifeval" / "input_data.jsonl"
    cached.parent.mkdir(parents=True)
    cached.write_text(json.dumps(PROMPT) + "\n")
    monkeypatch.setattr(ifeval_data, "cached_path", lambda: cached)
    assert ifeval_data.resolve_input_data(None) == cached
    assert ifeval_data.resolve_input_data("mine.jsonl") == Path("mine.jsonl")
    responses = tmp_path / "r.jsonl"
    responses.write_text(json.dumps({"key": 7, "response": "Quiet pond at dusk"}) + "\n")
    metrics, _ = run_ifeval(IFEvalConfig(output=str(tmp_path / "out"), responses=str(responses)))
    assert metrics["prompt_level_strict"] == 1.0
    written = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert written["run"]["input_data"] == str(cached)


def test_first_run_converts_the_dataset_into_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import datasets

    cached = tmp_path / "cache" / "codit-ifeval" / "input_data.jsonl"
    monkeypatch.setattr(ifeval_data, "cached_path", lambda: cached)
    calls = []

    def fake_load(name: str, split: str):  # what datasets gives for google/IFEval
        calls.append((name, split))
        return datasets.Dataset.from_list([PROMPT])

    monkeypatch.setattr(datasets, "load_dataset", fake_load)

    def no_room(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space")

    with monkeypatch.context() as patch:  # a full disk while caching: no cache file, no temporary
        patch.setattr(os, "fsync", no_room)
        with pytest.raises(OutOfSpace, match=f"cannot write {cached}: No space; free"):
            ifeval_data.resolve_input_data(None)
    assert list(cached.parent.iterdir()) == []
    calls.clear()
    assert ifeval_data.resolve_input_data(None) == cached
    assert calls == [("google/IFEval", "train")]
    assert json.loads(cached.read_text()) == PROMPT
    assert ifeval_data.resolve_input_data(None) == cached and len(calls) == 1  # cached now
