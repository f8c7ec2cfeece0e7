"""The README's three commands end to end: hub prompts -> CoDIT dataset -> published carded
dataset + comparison report (the hub is a local folder and a fake HfApi; never the network)."""

from __future__ import annotations

import json

import pytest

from codit.cli.main import main
from codit.export.card import parse
from dataset_fixtures import EXPECTED, args, go_offline, write_folder


@pytest.fixture
def offline(monkeypatch, tmp_path):
    go_offline(monkeypatch, tmp_path)


def test_hub_prompts_to_published_dataset_and_report(pair_dirs, tmp_path, offline, monkeypatch):
    import huggingface_hub

    from test_export import FakeApi

    api = FakeApi()
    monkeypatch.setattr(huggingface_hub, "HfApi", lambda: api)
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    folder = write_folder(tmp_path / "lmsys")
    outs = {}
    for mode in ("direct", "codit"):
        outs[mode] = tmp_path / f"{mode}.jsonl"
        extra = ["--first-turn", "--dedup", "--mode", mode, "--temperature", "0"]
        assert main(args(pair_dirs, f"hf:{folder}", outs[mode], *extra)) == 0

    assert (
        main(
            [
                "export",
                str(outs["codit"]),
                "--push-to-hub",
                "me/codit-tiny",
                "--to",
                str(tmp_path / "ds"),
            ]
        )
        == 0
    )
    meta, body = parse((tmp_path / "ds" / "README.md").read_text())
    assert meta["dataset_info"]["splits"][0]["num_examples"] == len(EXPECTED)
    assert "| mode | codit |" in body and f"hf:{folder}" in body
    assert [name for name, _ in api.calls] == ["create_repo", "upload_folder"]

    report = tmp_path / "cmp"
    assert (
        main(
            [
                "compare",
                str(outs["direct"]),
                str(outs["codit"]),
                "--labels",
                "direct,codit",
                "--output",
                str(report),
            ]
        )
        == 0
    )
    metrics = json.loads((report / "metrics.json").read_text())
    assert metrics["shared"] == len(EXPECTED) and metrics["length_unit"] == "tokens"
    assert (report / "report.md").read_text().startswith("# direct vs codit")
