"""``codit tiny build`` killed at any point: the old pair stays whole until the new one is
trained, the rerun resumes after the finished stages, and the result equals an uninterrupted
build byte for byte. Builds use one thread (the weights are the same for a seed on one machine
with one thread count); the killed ones run in a subprocess, the others in this process (torch's
thread count and deterministic mode are restored after)."""

from __future__ import annotations

import json
import resource
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from codit.cli.main import main
from codit.io.lock import lock_path
from codit.tiny.build import MODELS_DIR, STAGING

SMALL = [
    "--pages",
    "60",
    "--conversations",
    "40",
    "--heldout",
    "4",
    "--vocab-size",
    "350",
    "--hidden-size",
    "32",
    "--layers",
    "1",
    "--heads",
    "2",
    "--intermediate-size",
    "64",
    "--pretrain-steps",
    "3",
    "--pretrain-batch",
    "2",
    "--sft-steps",
    "150",  # long enough to be killed in (the test waits for the pre-trained model first)
    "--sft-batch",
    "2",
    "--threads",
    "1",
    "--no-progress",
]
FILES = ("model.safetensors", "tokenizer.json", "config.json")


def build_args(out: Path, seed: int) -> list[str]:
    return ["tiny", "build", "--output-dir", str(out), "--seed", str(seed), *SMALL]


def build(out: Path, seed: int, caplog: pytest.LogCaptureFixture | None = None) -> str:
    """Build in this process; returns the warnings it logged."""
    if caplog is not None:
        caplog.clear()
    assert main(build_args(out, seed)) == 0
    return caplog.text if caplog is not None else ""


@pytest.fixture(scope="module", autouse=True)
def _restore_torch():
    import torch

    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    yield
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(deterministic)


def pair(folder: Path) -> dict[str, bytes]:
    """The bytes that make the pair: each model's weights, tokenizer and config."""
    return {
        f"{name}/{f}": (folder / name / f).read_bytes()
        for name in ("tiny-base", "tiny-instruct")
        for f in FILES
    }


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted build of seed 3."""
    out = tmp_path_factory.mktemp("tiny-build") / "models"
    build(out, 3)
    return out


def old_pair(out: Path) -> dict[str, bytes]:
    """Copy the shipped pair into ``out``: the pair that a new build replaces."""
    for name in ("tiny-base", "tiny-instruct", "build.json"):
        copy = shutil.copytree if (MODELS_DIR / name).is_dir() else shutil.copy
        copy(MODELS_DIR / name, out / name)
    return pair(out)


def test_a_killed_build_keeps_the_old_pair_and_the_rerun_resumes(
    reference: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "models"
    out.mkdir()
    old = old_pair(out)
    old_seed = json.loads((out / "build.json").read_text())["config"]["seed"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "codit", *build_args(out, 3)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    state = out / STAGING / "state.json"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and "pretrain" not in _stages(state):
        time.sleep(0.01)
    assert proc.poll() is None, f"the build ended before it was killed: {proc.stderr.read()}"  # type: ignore[union-attr]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert pair(out) == old  # killed while fine-tuning: the old pair is untouched
    assert json.loads((out / "build.json").read_text())["config"]["seed"] == old_seed
    assert not (out / STAGING / "tiny-instruct").exists()

    logged = build(out, 3, caplog)
    assert "taking over the lock" in logged
    assert f"resuming the unfinished build in {out / STAGING}: pretrain done" in logged
    assert pair(out) == pair(reference)  # equal to an uninterrupted build
    assert (out / "heldout.jsonl").read_text() == (reference / "heldout.jsonl").read_text()
    manifest = json.loads((out / "build.json").read_text())
    assert manifest["config"]["seed"] == 3 and manifest["resumed"] == [["pretrain"]]
    uninterrupted = json.loads((reference / "build.json").read_text())
    assert manifest["final_loss"] == uninterrupted["final_loss"]
    assert manifest["parameters"] == uninterrupted["parameters"]
    assert not (out / STAGING).exists() and not lock_path(out).exists()


# Killed between the two renames that move the new pair in: the new tiny-base is in place, the
# old tiny-instruct still beside it, and no build.json says the folder is a finished build.
KILLED_WHILE_MOVING = textwrap.dedent(
    """
    import os, sys
    import codit.tiny.build as build
    def move_one(staging, output_dir):
        os.replace(output_dir / "tiny-base", staging / "old-tiny-base")
        os.replace(staging / "tiny-base", output_dir / "tiny-base")
        os.kill(os.getpid(), 9)
    build._move_pair = move_one
    from codit.cli.main import main
    sys.exit(main(sys.argv[1:]))
    """
)


def test_a_build_killed_while_moving_the_pair_in_is_finished_by_the_rerun(
    reference: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "models"
    staging = out / STAGING
    staging.mkdir(parents=True)  # an unfinished build of other settings, to be discarded
    (staging / "state.json").write_text(json.dumps({"config": {"seed": 99}, "stages": {"x": 1}}))
    old = old_pair(out)
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_WHILE_MOVING, *build_args(out, 3)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert f"{staging} holds an unfinished build with other settings: discarded" in killed.stderr
    new = pair(reference)
    half = pair(out)
    assert {k: v for k, v in half.items() if k.startswith("tiny-base/")} == {
        k: v for k, v in new.items() if k.startswith("tiny-base/")
    }
    assert {k: v for k, v in half.items() if k.startswith("tiny-instruct/")} == {
        k: v for k, v in old.items() if k.startswith("tiny-instruct/")
    }
    assert not (out / "build.json").exists()

    logged = build(out, 3, caplog)
    assert "pretrain, finetune done" in logged  # nothing is trained again
    assert pair(out) == new
    manifest = json.loads((out / "build.json").read_text())
    assert manifest["config"]["seed"] == 3 and manifest["resumed"] == [["finetune", "pretrain"]]
    assert not staging.exists() and not lock_path(out).exists()


def _stages(state: Path) -> dict:
    """The stages an unfinished build has marked done ({} before its state is written)."""
    try:
        return json.loads(state.read_text())["stages"]
    except (OSError, ValueError):
        return {}


def test_a_full_disk_stops_the_build_with_one_sentence_and_the_rerun_completes(
    reference: Path, tmp_path: Path
) -> None:
    out = tmp_path / "models"
    limit = 20_000  # bytes per file: the data and state fit, a model does not
    full = subprocess.run(
        [sys.executable, "-m", "codit", *build_args(out, 3)],
        capture_output=True,
        text=True,
        timeout=600,
        preexec_fn=lambda: (
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN),
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit)),
        ),
    )
    assert full.returncode == 8, full.stderr
    assert "Traceback" not in full.stderr
    [error] = [line for line in full.stderr.splitlines() if line.startswith("codit: error:")]
    assert error.startswith(f"codit: error: cannot write {out / STAGING / 'tiny-base.tmp'}: ")
    assert error.endswith(
        f"(the pair in {out} is unchanged); free some space and rerun the same command"
    )
    assert not (out / STAGING / "tiny-base.tmp").exists()
    build(out, 3)
    assert pair(out) == pair(reference)
