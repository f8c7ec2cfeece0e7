"""Long runs that cannot corrupt a dataset, command by command, in real subprocesses: a second
run on the same output is refused, SIGTERM stops cleanly, a full disk stops cleanly, and a run
killed with SIGKILL resumes with every id exactly once."""

from __future__ import annotations

import dataclasses
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from fakeserver import FakeServer, Reply
from scripted_llm import codeclm_script, ecd_script

CODIT = [sys.executable, "-m", "codit"]


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def start(args: list[str], **kw) -> subprocess.Popen:
    return subprocess.Popen(
        [*CODIT, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, **kw
    )


def wait_for(proc: subprocess.Popen, ready: Callable[[], bool], limit: float = 240) -> None:
    """Wait until ``ready()`` while ``proc`` runs; fail if it ends first."""
    deadline = time.time() + limit
    while time.time() < deadline and proc.poll() is None and not ready():
        time.sleep(0.02)
    assert proc.poll() is None, (
        f"the run ended before it could be stopped: {proc.stderr.read() if proc.stderr else ''}"
    )
    assert ready(), "the run never got going"


def has_lines(path: Path, n: int) -> Callable[[], bool]:
    return lambda: path.exists() and path.read_bytes().count(b"\n") >= n


def kill(proc: subprocess.Popen) -> None:
    proc.kill()
    proc.wait()


def rerun(args: list[str]) -> subprocess.CompletedProcess:
    done = subprocess.run([*CODIT, *args], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return done


# --- generate: the lock, signals, a full disk, SIGKILL ----------------------------------------

N = 24


def generate_args(pair_dirs, tmp_path: Path, *extra: str, n: int = N) -> tuple[list[str], Path]:
    inp = write_jsonl(
        tmp_path / "p.jsonl", [{"id": f"q{i}", "prompt": f"hello fox {i}"} for i in range(n)]
    )
    out = tmp_path / "out.jsonl"
    instruct, base = pair_dirs
    args = [
        "generate",
        "--instruct",
        str(instruct),
        "--base",
        str(base),
        "--input",
        str(inp),
        "--output",
        str(out),
        "--max-new-tokens",
        "16",
        "--batch-size",
        "2",
        "--no-progress",
        *extra,
    ]
    return args, out


def ids(path: Path) -> list[str]:
    return sorted(r["id"] for r in read(path))


def test_a_second_run_on_the_same_output_is_refused(pair_dirs, tmp_path: Path) -> None:
    n = 400  # far more than the first run writes while the second one starts and is refused
    args, out = generate_args(pair_dirs, tmp_path, n=n)
    lock = Path(str(out) + ".lock")
    first = start(args)
    wait_for(first, has_lines(out, 2))
    since = json.loads(lock.read_text())["started"]  # read while it runs
    before = out.read_bytes()
    second = subprocess.run([*CODIT, *args], capture_output=True, text=True, timeout=120)
    assert first.poll() is None, "the first run ended before the second one started"
    assert second.returncode == 7
    assert second.stderr.strip().splitlines()[-1] == (
        f"codit: error: {out} is being written by another run (pid {first.pid} on "
        f"{socket.gethostname()}, running since {since}); "
        "wait for it to finish, stop it, or write to another output"
    )
    # the refused run touched neither the lock nor the output, and the first run goes on
    assert json.loads(lock.read_text())["pid"] == first.pid
    written = out.read_bytes().count(b"\n")
    wait_for(first, has_lines(out, written + 2))
    assert out.read_bytes().startswith(before)
    first.send_signal(signal.SIGTERM)  # the rest of its 400 rows would prove nothing more
    assert first.wait(timeout=120) == 143, first.stderr.read() if first.stderr else ""
    kept = [r["id"] for r in read(out)]
    assert 0 < len(kept) < n and len(set(kept)) == len(kept)  # every id at most once
    assert not lock.exists()


def test_sigterm_stops_cleanly_then_the_rerun_completes(pair_dirs, tmp_path: Path) -> None:
    args, out = generate_args(pair_dirs, tmp_path)
    proc = start(args)
    wait_for(proc, has_lines(out, 2))
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 143
    err = proc.stderr.read() if proc.stderr else ""
    assert "SIGTERM: finishing the records in flight" in err
    kept = ids(out)
    assert (
        f"codit: error: stopped by SIGTERM; {len(kept)} records are kept in {out}; rerun the same command to resume"
        in err
    )
    assert 0 < len(kept) < N and len(set(kept)) == len(kept)
    manifest = json.loads(out.with_suffix(".manifest.json").read_text())
    assert (
        manifest["runs"][-1]["complete"] is False and manifest["runs"][-1]["stopped"] == "signal 15"
    )
    assert manifest["counts"]["records"] == len(kept)
    rerun(args)
    assert ids(out) == sorted(f"q{i}" for i in range(N))
    manifest = json.loads(out.with_suffix(".manifest.json").read_text())
    assert [r["complete"] for r in manifest["runs"]] == [False, True]
    assert manifest["runs"][1]["already_done"] == len(kept)
    assert manifest["counts"] == {"records": N, "errors": 0}


def test_a_second_sigint_exits_at_once(pair_dirs, tmp_path: Path) -> None:
    # long rows in flight, so that the graceful stop is still finishing them
    args, out = generate_args(pair_dirs, tmp_path, "--max-new-tokens", "200", "--batch-size", "8")
    proc = start(args)
    wait_for(proc, has_lines(out, 1))
    proc.send_signal(signal.SIGINT)
    time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 130
    assert "second SIGINT: exiting now" in (proc.stderr.read() if proc.stderr else "")
    rerun(args)
    assert ids(out) == sorted(f"q{i}" for i in range(N))


def _file_limit(limit: int) -> Callable[[], None]:
    def limit_files() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return limit_files


def test_a_full_disk_midway_then_the_rerun_completes(pair_dirs, tmp_path: Path) -> None:
    args, out = generate_args(pair_dirs, tmp_path)
    full = subprocess.run(
        [*CODIT, *args], capture_output=True, text=True, timeout=300, preexec_fn=_file_limit(4000)
    )
    assert full.returncode == 8, full.stderr
    error = [line for line in full.stderr.splitlines() if line.startswith("codit: error:")]
    assert len(error) == 1 and f"cannot write {out}: File too large" in error[0], full.stderr
    assert out.read_bytes().endswith(b"\n") and 0 < len(read(out)) < N  # whole lines only
    rerun(args)
    assert ids(out) == sorted(f"q{i}" for i in range(N))


# --- SIGKILL midway, then a rerun, for every writing command ---------------------------------


def test_paraphrase_killed_resumes_with_every_id_once(tmp_path: Path) -> None:
    n = 4000
    rows = [
        {
            "id": f"r{i}",
            "prompt": f"Please write a short note about topic {i} today",
            "completion": "ok",
        }
        for i in range(n)
    ]
    inp = write_jsonl(tmp_path / "p.jsonl", rows)
    out = tmp_path / "pairs.jsonl"
    args = [
        "paraphrase",
        "--input",
        str(inp),
        "--output",
        str(out),
        "--no-progress",
        "--fsync-every",
        "1",
    ]
    proc = start(args)
    wait_for(proc, has_lines(out, 20))
    kill(proc)
    partial = len(read(out))
    assert partial < n
    done = rerun(args)
    assert "taking over the lock" in done.stderr  # the killed run's lock
    got = [r["id"] for r in read(out)] + [r["id"] for r in read(tmp_path / "pairs.errors.jsonl")]
    assert sorted(got) == sorted(r["id"] for r in rows)


def ifeval_input(path: Path, n: int) -> Path:
    return write_jsonl(
        path,
        [
            {
                "key": k,
                "prompt": f"Say {k} without commas.",
                "instruction_id_list": ["punctuation:no_comma"],
                "kwargs": [{}],
            }
            for k in range(n)
        ],
    )


def test_eval_ifeval_killed_resumes_with_every_key_once(tmp_path: Path) -> None:
    n = 60
    inp = ifeval_input(tmp_path / "i.jsonl", n)
    with FakeServer(lambda body, k: Reply(text="fine", delay=0.03)) as server:
        args = [
            "eval",
            "ifeval",
            "--model",
            f"openai:m@{server.url}",
            "--input-data",
            str(inp),
            "--output",
            str(tmp_path / "out"),
            "--batch-size",
            "1",
            "--concurrency",
            "1",
            "--no-progress",
        ]
        proc = start(args)
        responses = tmp_path / "out" / "responses.jsonl"
        wait_for(proc, has_lines(responses, 4))
        kill(proc)
        assert len(read(responses)) < n
        rerun(args)
    assert sorted(int(r["id"]) for r in read(responses)) == list(range(n))
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["prompt_level_strict"] == 1.0 and metrics["missing_responses"] == 0


def test_eval_judge_killed_resumes_with_every_judgment_once(tmp_path: Path) -> None:
    n = 40
    a = write_jsonl(
        tmp_path / "a.jsonl",
        [{"id": f"p{i}", "prompt": f"Q{i}", "response": "a"} for i in range(n)],
    )
    b = write_jsonl(
        tmp_path / "b.jsonl",
        [{"id": f"p{i}", "prompt": f"Q{i}", "response": "b"} for i in range(n)],
    )
    out = tmp_path / "judge"
    with FakeServer(lambda body, k: Reply(text="[[A]]", delay=0.02)) as server:
        args = [
            "eval",
            "judge",
            "--a",
            str(a),
            "--b",
            str(b),
            "--judge",
            f"openai:j@{server.url}",
            "--output",
            str(out),
            "--concurrency",
            "1",
        ]
        proc = start(args)
        wait_for(proc, has_lines(out / "judgments.jsonl", 2))
        kill(proc)
        rerun(args)
    judged = [r["id"] for r in read(out / "judgments.jsonl")]
    assert sorted(judged) == sorted(f"p{i}:{o}" for i in range(n) for o in ("ab", "ba"))
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["pairs"] == n and metrics["ties"] == n  # "A" in both orders: a tie each


def slow(script: Callable[[dict, int], Reply], delay: float) -> Callable[[dict, int], Reply]:
    return lambda body, n: dataclasses.replace(script(body, n), delay=delay)


def test_codeclm_killed_resumes_with_every_id_once(tmp_path: Path) -> None:
    seeds = write_jsonl(
        tmp_path / "s.jsonl",
        [
            {"id": f"s{i}", "instruction": t}
            for i, t in enumerate(
                [
                    "Write poem notes for me please",
                    "Write recipe notes for dinner",
                    "Write email notes to my boss",
                ]
            )
        ],
    )
    out = tmp_path / "out" / "codeclm.jsonl"
    with FakeServer(slow(codeclm_script, 0.01)) as server:
        args = [
            "codeclm",
            "--strong",
            f"openai:strong@{server.url}",
            "--target",
            f"openai:target@{server.url}",
            "--seeds",
            str(seeds),
            "--output",
            str(out),
            "--num-instructions",
            "16",
            "--pool-size",
            "4",
            "--max-new-tokens",
            "64",
            "--concurrency",
            "1",
            "--no-progress",
        ]
        proc = start(args)
        wait_for(proc, lambda: len(server.requests) >= 40)
        kill(proc)
        rerun(args)
    kept, dropped = read(out), read(out.with_name("codeclm.dropped.jsonl"))
    every = [r["id"] for r in kept + dropped]
    assert len(every) == len(set(every)) == 16
    manifest = json.loads(out.with_name("codeclm.manifest.json").read_text())
    assert manifest["runs"][-1]["complete"] is True and "ended" not in manifest["runs"][0]


def test_ecd_killed_resumes_with_every_id_once(tmp_path: Path) -> None:
    seeds = write_jsonl(
        tmp_path / "s.jsonl",
        [
            {"id": f"s{i}", "prompt": t}
            for i, t in enumerate(
                [
                    "Tell me about the history of tea",
                    "Describe how rain forms in clouds",
                    "Explain why the sky looks blue",
                    "Give advice on learning to cook",
                ]
            )
        ],
    )
    out = tmp_path / "out" / "ecd.jsonl"
    with FakeServer(slow(ecd_script, 0.01)) as server:
        args = [
            "ecd",
            "--evolver",
            f"openai:evolver@{server.url}",
            "--responder",
            f"openai:responder@{server.url}",
            "--seeds",
            str(seeds),
            "--output",
            str(out),
            "--rounds",
            "3",
            "--max-new-tokens",
            "64",
            "--chunk-size",
            "1",
            "--concurrency",
            "1",
            "--no-progress",
        ]
        proc = start(args)
        wait_for(proc, has_lines(out.with_name("ecd.chains.jsonl"), 1))
        kill(proc)
        rerun(args)
    chains = [r["id"] for r in read(out.with_name("ecd.chains.jsonl"))]
    assert sorted(chains) == ["s0", "s1", "s2", "s3"]
    for name in ("ecd.jsonl", "ecd.sft.jsonl", "ecd.dropped.jsonl"):
        found = [r["id"] for r in read(out.with_name(name))]
        assert len(found) == len(set(found)), name


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs POSIX")
def test_generate_killed_leaves_a_lock_the_rerun_takes_over(pair_dirs, tmp_path: Path) -> None:
    args, out = generate_args(pair_dirs, tmp_path)
    proc = start(args)
    wait_for(proc, has_lines(out, 2))
    kill(proc)
    assert Path(str(out) + ".lock").exists()
    done = rerun(args)
    assert f"taking over the lock left by pid {proc.pid}" in done.stderr
    assert ids(out) == sorted(f"q{i}" for i in range(N))
