"""``codit experiment codit|coin`` killed with SIGKILL midway, then rerun: every record id is in
its file once, and the results equal those of an uninterrupted run into another directory (both
experiments are deterministic on one machine with one thread: per-record sampling seeds, seeded
training and greedy evaluation). The killed run is a subprocess; the others run in this process
(the experiments restore torch's thread count)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from codit.cli.main import main
from codit.io.lock import lock_path

pytest.importorskip("trl", reason="needs the train extra: pip install 'codit[train]'")


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def kill_when(argv: list[str], ready: Callable[[], bool], limit: float = 600) -> None:
    """Run ``codit argv`` in a subprocess and SIGKILL it once ``ready()``."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "codit", *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + limit
    while time.time() < deadline and proc.poll() is None and not ready():
        time.sleep(0.01)
    assert proc.poll() is None, f"the run ended before it was killed: {proc.stderr.read()}"  # type: ignore[union-attr]
    assert ready(), "the run never got going"
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def results(out: Path) -> dict:
    """results.json without what depends on the clock, the machine and the output folder."""

    def keep(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: keep(v) for k, v in value.items() if k not in CLOCK}
        return [keep(v) for v in value] if isinstance(value, list) else value

    return keep(json.loads((out / "results.json").read_text()))


CLOCK = ("runs", "seconds", "machine", "config")


def codit_argv(out: Path, instruct: Path, base: Path, heldout: Path) -> list[str]:
    return [
        "experiment",
        "codit",
        "--no-progress",
        "--output",
        str(out),
        "--instruct",
        str(instruct),
        "--base",
        str(base),
        "--heldout",
        str(heldout),
        "--prompts",
        "8",
        "--seeds",
        "1",
        "--max-new-tokens",
        "6",
        "--batch-size",
        "2",
        "--device",
        "cpu",
        "--threads",
        "1",
        "--student-hidden",
        "16",
        "--student-layers",
        "1",
        "--student-heads",
        "2",
        "--student-vocab",
        "300",
        "--student-pages",
        "40",
        "--student-steps",
        "2",
        "--student-batch",
        "2",
        "--sft-epochs",
        "1",
        "--sft-batch",
        "4",
    ]


def test_codit_experiment_killed_midway_resumes_to_the_same_results(
    pair_dirs: tuple[Path, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from codit.tiny.conversations import instruction_data
    from codit.tiny.world import make_world

    _, held = instruction_data(make_world(0), 0, 4, 0)
    heldout = tmp_path / "h.jsonl"
    heldout.write_text("".join(json.dumps(e.ifeval()) + "\n" for e in held))
    instruct, base = pair_dirs
    reference, out = tmp_path / "reference", tmp_path / "run"
    assert main(codit_argv(reference, instruct, base, heldout)) == 0

    first = out / "teacher" / "direct-seed0.jsonl"
    kill_when(
        codit_argv(out, instruct, base, heldout),
        lambda: first.is_file() and first.read_bytes().count(b"\n") >= 2,
    )
    assert not (out / "results.json").exists()
    assert lock_path(out).exists()  # left by the killed run
    with caplog.at_level("WARNING"):
        assert main(codit_argv(out, instruct, base, heldout)) == 0
    assert f"{out}: taking over the lock left by pid" in caplog.text

    for arm in ("direct", "codit-a0.01-b1"):
        kept, failed = (out / "teacher" / f"{arm}-seed0{s}" for s in (".jsonl", ".errors.jsonl"))
        done = lines(kept) + lines(failed)
        assert sorted(r["id"] for r in done) == [str(i) for i in range(8)]  # every id once
        ref = reference / "teacher" / f"{arm}-seed0.jsonl"
        assert {r["id"]: r["messages"] for r in lines(kept)} == {
            r["id"]: r["messages"] for r in lines(ref)
        }  # the same records as the uninterrupted run
    assert results(out) == results(reference)
    manifest = json.loads((out / "experiment.json").read_text())
    assert len(manifest["runs"]) == 2 and manifest["runs"][1]["complete"] is True
    assert "ended" not in manifest["runs"][0]  # the killed run never closed its entry
    assert not lock_path(out).exists()


def coin_argv(out: Path) -> list[str]:
    return [
        "experiment",
        "coin",
        "--no-progress",
        "--output",
        str(out),
        "--tasks",
        "size",
        "--train-per-task",
        "8",
        "--test-per-task",
        "1",
        "--seeds",
        "1",
        "--epochs",
        "1",
        "--batch-size",
        "4",
        "--device",
        "cpu",
        "--threads",
        "1",
    ]


def test_coin_experiment_killed_midway_resumes_to_the_same_results(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    reference, out = tmp_path / "reference", tmp_path / "run"
    assert main(coin_argv(reference)) == 0

    # killed once the training pairs are written: while the first model is being tuned
    kill_when(coin_argv(out), (out / "data" / "pairs-seed0.jsonl").is_file)
    assert not (out / "results.json").exists()
    with caplog.at_level("WARNING"):
        assert main(coin_argv(out)) == 0
    assert f"{out}: taking over the lock left by pid" in caplog.text

    pairs = lines(out / "data" / "pairs-seed0.jsonl")
    assert sorted(p["id"] for p in pairs) == sorted(f"size-{k}" for k in range(8))
    assert pairs == lines(reference / "data" / "pairs-seed0.jsonl")
    for arm in ("baseline", "coin"):
        answers = lines(out / "models" / f"{arm}-seed0" / "answers.jsonl")
        keys = [(a["key"], a["wording"], a["level"]) for a in answers]
        assert len(keys) == len(set(keys)) == 6 * 5  # one instance x 6 wordings x 5 levels
        assert answers == lines(reference / "models" / f"{arm}-seed0" / "answers.jsonl")
    assert results(out) == results(reference)
    assert not lock_path(out).exists()
