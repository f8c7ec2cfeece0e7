"""The README's three commands, taken from README.md itself and run as shown: hub prompts ->
CoDIT dataset and its direct baseline -> published carded dataset + comparison report. Only the
names change: the hub set is a local folder of Parquet shards, the models the tiny pair, the
upload a fake HfApi (never the network); ``--max-new-tokens 4 --no-progress`` keep it short."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from codit.cli.main import main
from codit.export.card import parse
from dataset_fixtures import N, go_offline, read, write_folder

README = Path(__file__).resolve().parents[1] / "README.md"
SECTION = "## From hub prompts to a published dataset"


def readme_commands() -> list[list[str]]:
    """The bash block under SECTION, one argv per command (continuations joined, comments cut)."""
    text = README.read_text()
    block = re.search(r"```bash\n(.*?)```", text[text.index(SECTION) :], re.S)
    assert block, f"README.md has no bash block under {SECTION!r}"
    lines = block.group(1).replace("\\\n", " ").splitlines()
    return [shlex.split(line, comments=True) for line in lines if line.strip()]


@pytest.fixture
def offline(monkeypatch, tmp_path):
    go_offline(monkeypatch, tmp_path)


def test_readme_flow_is_three_commands_and_runs_as_shown(pair_dirs, tmp_path, offline, monkeypatch):
    import huggingface_hub

    from test_export import FakeApi

    commands = readme_commands()
    assert [c[:2] for c in commands] == [
        ["codit", "generate"],
        ["codit", "export"],
        ["codit", "compare"],
    ]
    api = FakeApi()
    monkeypatch.setattr(huggingface_hub, "HfApi", lambda: api)
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    monkeypatch.chdir(tmp_path)  # the commands write to out/, as in the README
    folder = write_folder(tmp_path / "lmsys")
    instruct, base = pair_dirs
    names = {
        "hf:lmsys/lmsys-chat-1m": f"hf:{folder}",
        "Qwen/Qwen3-8B": str(instruct),
        "Qwen/Qwen3-8B-Base": str(base),
    }
    generate, export, compare = ([names.get(a, a) for a in c[1:]] for c in commands)
    assert main([*generate, "--max-new-tokens", "4", "--no-progress"]) == 0
    assert main(export) == 0
    assert main(compare) == 0

    # --language en drops c04 ("tell me about apples": langdetect, seeded, reads it as fr), so
    # c05, equal to it after normalisation, is the first of its kind and kept by --dedup
    kept = sorted(f"c{i:02d}" for i in range(N) if i != 4)
    codit, direct = read(Path("out/codit.jsonl")), read(Path("out/direct.jsonl"))
    assert sorted(r["id"] for r in codit) == sorted(r["id"] for r in direct) == kept
    assert {r["meta"]["mode"] for r in codit} == {"codit"}
    assert {r["meta"]["mode"] for r in direct} == {"direct"}
    assert all(len(r["messages"]) == 2 for r in direct)  # the first user turn, then the answer
    for name in ("codit", "direct"):
        manifest = json.loads(Path(f"out/{name}.manifest.json").read_text())
        assert manifest["runs"][-1]["filtered"] == {"language": 1}
        assert manifest["source"]["filters"] == {
            "first_turn": True,
            "language": "en",
            "dedup": True,
        }

    meta, body = parse(Path("out/codit-dataset/README.md").read_text())
    assert meta["license"] == "apache-2.0"
    assert meta["dataset_info"]["splits"][0]["num_examples"] == len(kept)
    assert "| mode | codit |" in body and f"hf:{folder}" in body
    assert [name for name, _ in api.calls] == ["create_repo", "upload_folder"]
    assert api.calls[0][1]["repo_id"] == "my-org/codit-qwen3"

    metrics = json.loads(Path("out/compare/metrics.json").read_text())
    assert metrics["shared"] == len(kept) and metrics["length_unit"] == "tokens"
    assert Path("out/compare/report.md").read_text().startswith("# direct vs codit")

    # the same generate command again: both outputs are complete, nothing is made twice
    assert main([*generate, "--max-new-tokens", "4", "--no-progress"]) == 0
    assert len(read(Path("out/codit.jsonl"))) == len(read(Path("out/direct.jsonl"))) == len(kept)


def test_baseline_flag_is_checked_before_any_model_loads():
    from codit.decoding.config import DecodingConfig
    from codit.errors import ConfigError
    from codit.generation.config import GenerateConfig

    with pytest.raises(ConfigError) as err:
        GenerateConfig(input="p.jsonl", output="o.jsonl", baseline="o.jsonl")
    assert err.value.problems == ["--baseline must be another file than --output"]
    with pytest.raises(ConfigError) as err:
        GenerateConfig(
            input="p.jsonl",
            output="o.jsonl",
            baseline="d.txt",
            decoding=DecodingConfig(mode="direct"),
        )
    assert err.value.problems == [
        "--baseline must be a .jsonl file, got d.txt",
        "--baseline needs --mode codit (in direct mode the output is it)",
    ]
    run = GenerateConfig(input="p.jsonl", output="o.jsonl", baseline="d.jsonl").baseline_run()
    assert (run.output, run.baseline, run.decoding.mode) == ("d.jsonl", None, "direct")
