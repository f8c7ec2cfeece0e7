"""Inputs by name and streamed: ``hf:`` through ``datasets`` (a local dataset folder, and a hub id
redirected to it; never the network), filters, the manifest's source, and exact resume after
SIGKILL on a streamed input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from codit.cli.main import main
from dataset_fixtures import EXPECTED, N, args, conversation, go_offline, read, write_folder


@pytest.fixture
def offline(monkeypatch, tmp_path):
    go_offline(monkeypatch, tmp_path)


@pytest.mark.parametrize("streaming", [False, True])
def test_local_dataset_folder_through_datasets_with_filters(
    pair_dirs, tmp_path, offline, streaming
):
    folder = write_folder(tmp_path / "lmsys")
    out = tmp_path / "o.jsonl"
    extra = ["--first-turn", "--dedup"] + (["--streaming"] if streaming else [])
    assert main(args(pair_dirs, f"hf:{folder}", out, *extra)) == 0
    records = read(out)
    assert sorted(r["id"] for r in records) == EXPECTED
    by_id = {r["id"]: r for r in records}
    assert by_id["c03"]["messages"][:-1] == [conversation(3)[0]]  # first user turn only
    manifest = json.loads(out.with_suffix(".manifest.json").read_text())
    source = manifest["source"]
    assert source["input"] == f"hf:{folder}" and source["split"] == "train"
    assert source["streaming"] is streaming and source["revision"] is None
    assert source["filters"] == {"first_turn": True, "dedup": True}
    assert manifest["runs"][-1]["filtered"] == {"dedup": 1}
    assert manifest["runs"][-1]["inputs"] == N - 1


def test_hub_id_goes_through_load_dataset_with_split_subset_revision(
    pair_dirs, tmp_path, offline, monkeypatch
):
    import datasets

    folder = write_folder(tmp_path / "lmsys")
    real = datasets.load_dataset
    calls = []

    def fake(path, name=None, **kwargs):  # the hub, served from the local folder
        calls.append((path, name, kwargs))
        return real(str(folder), split=kwargs["split"], streaming=kwargs["streaming"])

    monkeypatch.setattr(datasets, "load_dataset", fake)
    out = tmp_path / "o.jsonl"
    extra = ["--split", "test", "--subset", "default", "--revision", "v1.0", "--streaming"]
    assert main(args(pair_dirs, "hf:lmsys/lmsys-chat-1m", out, *extra)) == 0
    assert sorted(r["id"] for r in read(out)) == ["c00", "c01"]
    assert calls[0] == (
        "lmsys/lmsys-chat-1m",
        "default",
        {"split": "test", "revision": "v1.0", "streaming": True},
    )
    assert len(calls) == 2  # streamed twice: checked, then generated
    source = json.loads(out.with_suffix(".manifest.json").read_text())["source"]
    assert (source["dataset"], source["subset"], source["split"], source["revision"]) == (
        "lmsys/lmsys-chat-1m",
        "default",
        "test",
        "v1.0",
    )
    # a rerun from another split is another dataset: refused, not mixed in
    assert (
        main(args(pair_dirs, "hf:lmsys/lmsys-chat-1m", out, "--split", "train", "--streaming")) == 2
    )


def test_unknown_split_and_unreachable_hub_are_one_sentence(pair_dirs, tmp_path, offline, capsys):
    folder = write_folder(tmp_path / "lmsys")
    assert main(args(pair_dirs, f"hf:{folder}", tmp_path / "o.jsonl", "--split", "dev")) == 3
    assert "has no split 'dev'" in capsys.readouterr().err
    assert main(args(pair_dirs, "hf:nobody/nothing", tmp_path / "o2.jsonl")) == 3
    assert "could not be loaded through datasets" in capsys.readouterr().err


def test_filters_that_drop_everything_say_so(pair_dirs, tmp_path, offline, capsys):
    folder = write_folder(tmp_path / "lmsys")
    assert main(args(pair_dirs, f"hf:{folder}", tmp_path / "o.jsonl", "--min-chars", "1000")) == 3
    assert "passes the filters (24 by --min-chars)" in capsys.readouterr().err


def test_local_parquet_streams_with_a_limit(pair_dirs, tmp_path):
    folder = write_folder(tmp_path / "lmsys")
    out = tmp_path / "o.jsonl"
    parquet = folder / "data" / "train-00001-of-00002.parquet"
    assert main(args(pair_dirs, str(parquet), out, "--first-turn", "--limit", "3")) == 0
    assert sorted(r["id"] for r in read(out)) == ["c10", "c11", "c12"]


def test_streamed_run_killed_midway_resumes_exactly(pair_dirs, tmp_path, offline):
    folder = write_folder(tmp_path / "lmsys")
    out = tmp_path / "o.jsonl"
    cmd = [
        sys.executable,
        "-m",
        "codit",
        *args(
            pair_dirs,
            f"hf:{folder}",
            out,
            "--first-turn",
            "--dedup",
            "--streaming",
            "--batch-size",
            "2",
        ),
    ]
    cmd[cmd.index("--max-new-tokens") + 1] = "24"
    env = os.environ | {
        "HF_DATASETS_OFFLINE": "1",
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_CACHE": str(tmp_path / "hf-cache"),
    }
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if out.exists() and len(out.read_text().splitlines()) >= 3:
            break
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = len(out.read_text().splitlines())
    assert 0 < partial < len(EXPECTED), "the run should have been killed midway"
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    ids = [json.loads(line)["id"] for line in out.read_text().splitlines()]
    assert sorted(ids) == EXPECTED  # every picked id once, none of the filtered ones


def test_resume_refuses_a_hub_branch_that_moved(pair_dirs, tmp_path, offline, monkeypatch, capsys):
    import codit.io.sources as sources

    folder = write_folder(tmp_path / "lmsys")
    out = tmp_path / "o.jsonl"
    monkeypatch.setattr(sources, "resolved_revision", lambda name, revision: "1111aaaa")
    assert main(args(pair_dirs, f"hf:{folder}", out, "--limit", "2")) == 0
    source = json.loads(out.with_suffix(".manifest.json").read_text())["source"]
    assert source["resolved_revision"] == "1111aaaa"
    monkeypatch.setattr(sources, "resolved_revision", lambda name, revision: "2222bbbb")
    assert main(args(pair_dirs, f"hf:{folder}", out, "--limit", "4")) == 2
    assert "pass --revision 1111aaaa to resume" in capsys.readouterr().err
    monkeypatch.setattr(sources, "resolved_revision", lambda name, revision: "1111aaaa")
    assert main(args(pair_dirs, f"hf:{folder}", out, "--limit", "4", "--revision", "1111aaaa")) == 0
    assert len(read(out)) == 4
