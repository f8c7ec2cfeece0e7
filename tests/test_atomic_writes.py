"""Whole-file writes go through ``codit.io.atomic``: a write that fails midway leaves the old
file, or none, and no temporary file; a full disk is ``OutOfSpace`` naming the file."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from codit.errors import OutOfSpace
from codit.io import atomic


def full_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    """The next fsyncs find no room, as on a disk that filled while the file was written."""

    def no_room(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", no_room)


def test_a_failed_replace_keeps_the_previous_file_and_leaves_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "a.json"
    atomic.write_json(path, {"n": 1})
    with pytest.raises(RuntimeError, match="midway"), atomic.replacing(path) as handle:
        handle.write(b'{"n": ')
        raise RuntimeError("midway")
    assert json.loads(path.read_text()) == {"n": 1}
    full_disk(monkeypatch)
    with pytest.raises(OutOfSpace) as err:
        atomic.write_json(path, {"n": 2})
    assert str(err.value) == (
        f"cannot write {path}: No space left on device (the previous a.json is unchanged); "
        "free some space and rerun the same command"
    )
    assert json.loads(path.read_text()) == {"n": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


def test_a_full_disk_on_a_new_file_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    full_disk(monkeypatch)
    with pytest.raises(OutOfSpace) as err:
        atomic.write_lines(tmp_path / "new.jsonl", [{"id": "1"}])
    assert str(err.value) == (
        f"cannot write {tmp_path / 'new.jsonl'}: No space left on device; "
        "free some space and rerun the same command"
    )
    assert list(tmp_path.iterdir()) == []


def _finished_trainer() -> Any:
    """What ``finish`` reads from a trainer that has run: its log, model and arguments."""
    history = [{"step": 1, "loss": 2.5}, {"step": 1, "train_loss": 2.5, "train_runtime": 0.1}]
    parameter = SimpleNamespace(numel=lambda: 12, requires_grad=True)
    return SimpleNamespace(
        state=SimpleNamespace(log_history=history, global_step=1),
        eval_dataset=None,
        model=SimpleNamespace(parameters=lambda: [parameter]),
        processing_class=None,
        args=SimpleNamespace(device="cpu", bf16=False),
    )


def test_the_training_manifest_is_whole_or_absent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Experiments read ``codit_train_config.json`` as "this run finished": a manifest that
    could not be written must not exist, so the rerun trains again."""
    from codit.training import outputs
    from codit.training.config import TrainConfig

    out = tmp_path / "trained"
    monkeypatch.setattr(  # the model directory is save_trained's, tested with TRL
        outputs, "save_trained", lambda model, tok, output: {"model": str(output)}
    )
    config = TrainConfig(model="m", data=str(tmp_path / "d.jsonl"), output=str(out))
    facts = {"records": 4, "model_info": {"id": "m"}}
    with monkeypatch.context() as patch:
        full_disk(patch)
        with pytest.raises(OutOfSpace, match=f"cannot write {out / outputs.MANIFEST}: "):
            outputs.finish(_finished_trainer(), config, "sft", facts)
    assert not out.exists() or list(out.iterdir()) == []  # no manifest, no temporary file
    manifest = outputs.finish(_finished_trainer(), config, "sft", facts)
    assert json.loads((out / outputs.MANIFEST).read_text()) == json.loads(
        json.dumps(manifest, default=str)
    )
    assert manifest["metrics"]["logged"] == [{"step": 1, "loss": 2.5}]
    assert manifest["resolved"]["trainable_parameters"] == 12
    assert sorted(p.name for p in out.iterdir()) == [outputs.MANIFEST]
