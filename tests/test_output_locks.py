"""Whole-file writers take the output lock too: export, compare, filter, select, annotate and
tiny build refuse a second run on the same output with generate's exit code (7) and sentence,
and write nothing while another run holds it."""

from __future__ import annotations

import json
import os
import resource
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from codit.cli.main import main
from codit.errors import OutputLocked
from codit.io.lock import OutputLock, lock_path


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def record(rid: str, answer: str, score: int | None = None) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": rid,
        "messages": [
            {"role": "user", "content": f"question {rid}"},
            {"role": "assistant", "content": answer},
        ],
        "meta": {"mode": "direct", "finish_reason": "stop", "completion_tokens": 3},
    }
    if score is not None:
        row["annotation"] = {"score": score}
    return row


def records(tmp_path: Path, name: str = "gen.jsonl", scored: bool = False) -> Path:
    rows = [record(f"r{i}", f"answer {i} here", 5 if scored else None) for i in range(3)]
    return write_jsonl(tmp_path / name, rows)


# (argv, the output the command locks) for each whole-file writer, and annotate
Case = Callable[[Path], tuple[list[str], Path]]
CASES: dict[str, Case] = {
    "export": lambda t: (["export", str(records(t)), "--to", str(t / "ds")], t / "ds"),
    "compare": lambda t: (
        ["compare", str(records(t)), str(records(t, "b.jsonl")), "--output", str(t / "cmp")],
        t / "cmp",
    ),
    "filter": lambda t: (
        ["filter", "--input", str(records(t)), "--output", str(t / "sft.jsonl")],
        t / "sft.jsonl",
    ),
    "select": lambda t: (
        [
            "select",
            "--best",
            "--input",
            str(records(t, scored=True)),
            "--output",
            str(t / "b.jsonl"),
        ],
        t / "b.jsonl",
    ),
    "annotate": lambda t: (
        [
            "annotate",
            "--input",
            str(records(t)),
            "--judge",
            "openai:judge@http://127.0.0.1:9",  # never called: the lock refuses first
            "--output",
            str(t / "ann.jsonl"),
            "--no-progress",
        ],
        t / "ann.jsonl",
    ),
    "tiny build": lambda t: (
        ["tiny", "build", "--output-dir", str(t / "m"), "--pages", "5"],
        t / "m",
    ),
    "tiny eval": lambda t: (
        ["tiny", "eval", "--settings", "direct", "--limit", "2", "--max-new-tokens", "4"]
        + ["--samples", "0", "--output-dir", str(t / "ev")],
        t / "ev",
    ),
}


def refusal(output: Path, pid: int, since: str) -> str:
    """generate's sentence for a locked output, word for word."""
    return (
        f"codit: error: {output} is being written by another run (pid {pid} on "
        f"{socket.gethostname()}, running since {since}); "
        "wait for it to finish, stop it, or write to another output"
    )


@pytest.mark.parametrize("command", sorted(CASES))
def test_a_held_lock_refuses_the_command_and_nothing_is_written(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv, output = CASES[command](tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    with OutputLock(output, "generate"):
        since = json.loads(lock_path(output).read_text())["started"]
        assert main(argv) == OutputLocked.exit_code == 7
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1] == refusal(output, os.getpid(), since)
        # the refused run wrote nothing: no output, no report, no manifest, no temporary file
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
            [*before, lock_path(output).name]
        )
    assert not lock_path(output).exists()
    # a free annotate needs a judge (test_annotate), a free tiny build is test_tiny_build_resume
    if command not in ("annotate", "tiny build"):
        assert main(argv) == 0  # free again once released
        assert output.exists() and not lock_path(output).exists()
    if command == "tiny eval":  # the answers of both prompts, whole
        rows = [json.loads(line) for line in (output / "direct.jsonl").read_text().splitlines()]
        assert len(rows) == 2 and all(isinstance(r["response"], str) for r in rows)


# The first run pauses after taking the lock, before it reads its input, until the test lets it
# go: the second run is certain to start while the first one holds the lock.
PAUSED = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import codit.annotation.filter as command
    go, argv = Path(sys.argv[1]), sys.argv[2:]
    read = command.read_items
    def paused(*args, **kwargs):
        while not go.exists():
            time.sleep(0.01)
        return read(*args, **kwargs)
    command.read_items = paused
    from codit.cli.main import main
    sys.exit(main(argv))
    """
)


def test_two_concurrent_filters_on_one_output(tmp_path: Path) -> None:
    n = 50
    inp = write_jsonl(tmp_path / "gen.jsonl", [record(f"r{i}", f"answer {i}") for i in range(n)])
    out, go = tmp_path / "sft.jsonl", tmp_path / "go"
    argv = ["filter", "--input", str(inp), "--output", str(out), "--drop-length-capped"]
    first = subprocess.Popen(
        [sys.executable, "-c", PAUSED, str(go), *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.time() + 120
        while time.time() < deadline and first.poll() is None and not lock_path(out).exists():
            time.sleep(0.01)
        assert first.poll() is None and lock_path(out).exists(), "the first filter never locked"
        since = json.loads(lock_path(out).read_text())["started"]
        second = subprocess.run(
            [sys.executable, "-m", "codit", *argv], capture_output=True, text=True, timeout=120
        )
        assert second.returncode == 7
        assert second.stderr.strip().splitlines()[-1] == refusal(out, first.pid, since)
        assert not out.exists()  # the second run wrote nothing
    finally:
        go.touch()
    assert first.wait(timeout=120) == 0, first.stderr.read() if first.stderr else ""
    ids = [json.loads(line)["id"] for line in out.read_text().splitlines()]
    assert ids == [f"r{i}" for i in range(n)]  # every id once, in order
    assert not lock_path(out).exists()


def _file_limit(limit: int) -> Callable[[], None]:
    def limit_files() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return limit_files


@pytest.mark.parametrize("command", ["filter", "export", "compare"])
def test_a_full_disk_stops_a_whole_file_writer_cleanly(command: str, tmp_path: Path) -> None:
    argv, output = CASES[command](tmp_path)
    rows = [record(f"r{i}", "a long enough answer " * 20) for i in range(40)]
    for name in ("gen.jsonl", "b.jsonl"):  # inputs whose outputs outgrow the limit
        write_jsonl(tmp_path / name, rows)
    run = [sys.executable, "-m", "codit", *argv]
    full = subprocess.run(
        run, capture_output=True, text=True, timeout=300, preexec_fn=_file_limit(1024)
    )
    assert full.returncode == 8, full.stderr
    assert "Traceback" not in full.stderr
    [error] = [line for line in full.stderr.splitlines() if line.startswith("codit: error:")]
    assert error.startswith("codit: error: cannot write") and "File too large" in error
    assert error.endswith("; free some space and rerun the same command")
    if command == "export":  # the file that found no room, not only pyarrow's text
        assert error.startswith(f"codit: error: cannot write {output / 'data' / 'train-0'}")
    # nothing half-written is left: no output records, no temporary file
    left = [
        p for p in tmp_path.rglob("*") if p.is_file() and p.name not in ("gen.jsonl", "b.jsonl")
    ]
    assert all(p.suffix != ".tmp" and p.stat().st_size < 1024 for p in left), left
    assert not (output.is_file() and output.suffix == ".jsonl")
    assert not lock_path(output).exists()
    done = subprocess.run(run, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
