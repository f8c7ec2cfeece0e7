"""The run-directory layer on its own: record writers, the output lock, a full disk."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from codit.errors import OutOfSpace, OutputLocked
from codit.io import lock as lock_module
from codit.io.lock import OutputLock, lock_path
from codit.io.records import RecordWriter, repair_tail


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_writer_repairs_a_torn_tail_and_writes_each_id_once(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text('{"id": "a"}\n{"id": "b"}\n{"id": "c", "te')
    with RecordWriter(path) as writer:
        assert writer.ids == {"a", "b"}
        assert writer.write({"id": "c"}) is True
        assert writer.write({"id": "a", "again": True}) is False
        assert writer.write({"id": "c"}) is False
    assert lines(path) == [{"id": "a"}, {"id": "b"}, {"id": "c"}]
    assert repair_tail(path) == 0


def test_writer_fsyncs_every_n_records_and_on_close(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real = os.fsync
    monkeypatch.setattr("codit.io.records.os.fsync", lambda fd: calls.append(fd) or real(fd))
    writer = RecordWriter(tmp_path / "r.jsonl", fsync_every=3, fsync_seconds=0)
    for i in range(7):
        writer.write({"id": i})
    assert len(calls) == 2  # after records 3 and 6
    writer.close()
    assert len(calls) == 3  # the 7th, on close
    assert [r["id"] for r in lines(tmp_path / "r.jsonl")] == list(range(7))


def test_writer_fsyncs_within_the_time_window(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    synced = threading.Event()
    real = os.fsync
    monkeypatch.setattr("codit.io.records.os.fsync", lambda fd: (real(fd), synced.set()))
    with RecordWriter(tmp_path / "r.jsonl", fsync_every=1000, fsync_seconds=0.05) as writer:
        writer.write({"id": 1})
        assert synced.wait(30), "the timer never fsynced the record"


def test_a_second_lock_is_refused_naming_pid_and_host(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    with OutputLock(out, "generate"):
        holder = json.loads(lock_path(out).read_text())
        assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
        with pytest.raises(OutputLocked) as refused:
            OutputLock(out).acquire()
        message = str(refused.value)
        assert (
            f"{out} is being written by another run (pid {os.getpid()} on {socket.gethostname()}"
            in message
        )
        assert refused.value.exit_code == 7
    assert not lock_path(out).exists()
    with OutputLock(out):  # free again once released
        pass


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _stale(out: Path, pid: int, host: str) -> None:
    lock_path(out).write_text(json.dumps({"pid": pid, "host": host, "started": "earlier"}))


def test_a_lock_left_by_a_dead_run_is_taken_over_with_a_notice(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "out.jsonl"
    pid = _dead_pid()
    _stale(out, pid, socket.gethostname())
    with caplog.at_level(logging.WARNING), OutputLock(out):
        assert json.loads(lock_path(out).read_text())["pid"] == os.getpid()
    assert f"taking over the lock left by pid {pid}" in caplog.text


def test_without_flock_the_pid_and_host_decide(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(lock_module, "fcntl", None)  # a filesystem without flock
    out, host = tmp_path / "out.jsonl", socket.gethostname()
    _stale(out, os.getpid(), host)  # alive, this host
    with pytest.raises(OutputLocked, match=f"pid {os.getpid()} on {host}"):
        OutputLock(out).acquire()
    _stale(out, 4242, "elsewhere")  # another host: cannot be checked
    with pytest.raises(OutputLocked, match=f"if that run is gone, delete {lock_path(out)}"):
        OutputLock(out).acquire()
    dead = _dead_pid()
    _stale(out, dead, host)
    with caplog.at_level(logging.WARNING), OutputLock(out), pytest.raises(OutputLocked):
        OutputLock(out).acquire()  # O_EXCL keeps a second one out
    assert f"pid {dead}" in caplog.text and not lock_path(out).exists()


FULL_DISK = textwrap.dedent(
    """
    import resource, signal, sys
    from codit.io.records import RecordWriter
    from codit.errors import OutOfSpace
    limit = int(sys.argv[2])
    if limit:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    with RecordWriter(sys.argv[1], fsync_every=0) as writer:
        try:
            for i in range(100):
                writer.write({"id": i, "text": "x" * 90})
        except OutOfSpace as err:
            print(err)
            sys.exit(8)
    """
)


def test_a_full_disk_leaves_whole_records_and_the_rerun_completes(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    full = subprocess.run(
        [sys.executable, "-c", FULL_DISK, str(path), "2500"], capture_output=True, text=True
    )
    assert full.returncode == 8, full.stderr
    assert (
        full.stdout.startswith(f"cannot write {path}: File too large (its ")
        and "rerun" in full.stdout
    )
    assert path.stat().st_size <= 2500 and path.read_bytes().endswith(b"\n")
    kept = [r["id"] for r in lines(path)]
    assert 0 < len(kept) < 100 and kept == list(range(len(kept)))
    done = subprocess.run([sys.executable, "-c", FULL_DISK, str(path), "0"], capture_output=True)
    assert done.returncode == 0
    assert [r["id"] for r in lines(path)] == list(range(100))


def test_out_of_space_is_its_own_exit_code() -> None:
    assert OutOfSpace("x").exit_code == 8 and OutputLocked("x").exit_code == 7


def _paraphrase(tmp_path: Path, *extra: str) -> list[str]:
    rows = [
        {"id": f"r{i}", "prompt": f"Write a note about topic {i}", "completion": "ok"}
        for i in range(5)
    ]
    inp = tmp_path / "p.jsonl"
    inp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return [
        "paraphrase",
        "--input",
        str(inp),
        "--output",
        str(tmp_path / "out.jsonl"),
        "--no-progress",
        *extra,
    ]


def test_a_stale_manifest_starts_a_fresh_run_with_a_notice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    from codit.cli.main import main

    out = tmp_path / "out.jsonl"
    assert main(_paraphrase(tmp_path, "--seed", "0")) == 0
    assert main(_paraphrase(tmp_path, "--seed", "1")) == 2  # records made otherwise are there
    assert "was made with seed=0, not 1" in capsys.readouterr().err
    out.unlink()  # start over with other settings
    with caplog.at_level(logging.WARNING):
        assert main(_paraphrase(tmp_path, "--seed", "1")) == 0
    assert f"{out} is gone or empty: starting a fresh run" in caplog.text
    manifest = json.loads(out.with_suffix(".manifest.json").read_text())
    assert manifest["settings"]["seed"] == 1 and len(manifest["runs"]) == 1
    assert sorted(r["id"] for r in lines(out)) == [f"r{i}" for i in range(5)]


class SafetensorLikeError(Exception):
    """A library's own error for a failed write (safetensors raises one, not an OSError)."""


@pytest.mark.parametrize(
    ("error", "code", "sentence"),
    [
        (
            SafetensorLikeError("Error while serializing: I/O error: File too large (os error 27)"),
            8,
            "codit: error: cannot write: Error while serializing: I/O error: File too large "
            "(os error 27); free some space and rerun the same command",
        ),
        (
            OSError(28, "No space left on device", "out/x.png"),
            8,
            "codit: error: cannot write out/x.png: No space left on device; "
            "free some space and rerun the same command",
        ),
    ],
)
def test_any_write_that_finds_no_room_is_one_sentence_and_exit_8(
    error: Exception,
    code: int,
    sentence: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from codit.cli.main import main

    def full(config: object) -> None:
        raise error

    monkeypatch.setattr("codit.annotation.filter.run_filter", full)
    inp = tmp_path / "in.jsonl"
    inp.write_text('{"id": "a", "prompt": "q", "completion": "c"}\n')
    assert main(["filter", "--input", str(inp), "--output", str(tmp_path / "o.jsonl")]) == code
    assert capsys.readouterr().err.strip().splitlines() == [sentence]


def test_any_other_error_is_still_a_bug_with_its_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from codit.cli.main import main

    def broken(config: object) -> None:
        raise ValueError("a bug")

    monkeypatch.setattr("codit.annotation.filter.run_filter", broken)
    inp = tmp_path / "in.jsonl"
    inp.write_text('{"id": "a", "prompt": "q", "completion": "c"}\n')
    with pytest.raises(ValueError, match="a bug"):
        main(["filter", "--input", str(inp), "--output", str(tmp_path / "o.jsonl")])
