"""codit export: shards load back with ``datasets``, TRL trains on them, the card's YAML names the
right counts, and the upload goes through a fake HfApi (never the network)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codit.cli.main import main
from codit.errors import BackendError, ConfigError, DataError
from codit.export.card import command_line, parse, size_category
from codit.export.run import ExportConfig, export
from codit.io.manifest import write_manifest

QUESTIONS = [
    "write three bullet points about apples",
    "the quick brown fox",
    "all lowercase letters please",
    "a small model answers every question",
    "numbers 0 1 2 3",
]
ANSWERS = ["the lazy dog", "apples and pears", "no commas at all", "the river town", "4 5 6"]
# three stop, two length; record 2 has the contrastive keys the others lack, record 3 an int temperature
REASONS = ["stop", "length", "stop", "length", "stop"]


def _records() -> list[dict]:
    out = []
    for i, (q, a) in enumerate(zip(QUESTIONS, ANSWERS, strict=True)):
        meta = {
            "mode": "direct",
            "finish_reason": REASONS[i],
            "completion_tokens": i + 1,
            "temperature": 0.7,
        }
        if i == 2:
            meta.update({"base": "tiny-base", "alpha": 0.1})
        if i == 3:
            meta["temperature"] = 1
        out.append(
            {
                "id": f"r{i}",
                "messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}],
                "meta": meta,
            }
        )
    return out


MANIFEST = {
    "command": "generate",
    "settings": {
        "instruct": "org/instruct-8b",
        "base": None,
        "decoding": {"mode": "direct", "temperature": 0.7, "top_p": 0.95, "max_new_tokens": 64},
    },
    "config": {
        "input": "hf:org/prompts",
        "output": "out.jsonl",
        "instruct": "org/instruct-8b",
        "decoding": {"mode": "direct", "temperature": 0.7, "top_p": 0.95, "max_new_tokens": 64},
    },
    "environment": {"codit": "9.9.9", "python": "3.11"},
    "models": {
        "instruct": {"name": "org/instruct-8b", "revision": "abc123", "fingerprint": "f00"},
        "base": None,
    },
    "counts": {"records": 5, "errors": 1},
    "source": {"input": "hf:org/prompts", "split": "train", "filters": {"first_turn": True}},
}


@pytest.fixture
def records_file(tmp_path: Path) -> Path:
    path = tmp_path / "run" / "out.jsonl"
    path.parent.mkdir()
    path.write_text("".join(json.dumps(r) + "\n" for r in _records()))
    write_manifest(path, MANIFEST)
    return path


@pytest.mark.parametrize("fmt", ["parquet", "jsonl"])
def test_export_loads_back_with_datasets(records_file, tmp_path, fmt, monkeypatch):
    from datasets import load_dataset

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    folder = tmp_path / "ds"
    summary = export(records_file, ExportConfig(format=fmt, shard_size=2, to=str(folder)))
    assert [str(s) for s in summary.shards] == [
        f"data/train-0000{i}-of-00003.{fmt}" for i in range(3)
    ]
    data = load_dataset(str(folder))
    assert list(data) == ["train"]
    train = data["train"]
    assert train.num_rows == 5
    assert train["id"] == [f"r{i}" for i in range(5)]
    assert [r["messages"] for r in train] == [r["messages"] for r in _records()]
    metas = train["meta"]
    assert [m["finish_reason"] for m in metas] == REASONS
    assert metas[2]["base"] == "tiny-base" and metas[0]["base"] is None  # a key some records lack
    assert metas[3]["temperature"] == 1.0 and metas[0]["temperature"] == 0.7
    assert train.info.splits["train"].num_examples == 5


def test_card_yaml_parses_and_names_the_counts(records_file, tmp_path):
    folder = tmp_path / "ds"
    export(
        records_file,
        ExportConfig(shard_size=2, to=str(folder), license="apache-2.0", name="org/codit-set"),
    )
    meta, body = parse((folder / "README.md").read_text())
    assert meta["license"] == "apache-2.0"
    assert meta["task_categories"] == ["text-generation"]
    assert meta["size_categories"] == ["n<1K"]
    assert meta["configs"] == [
        {"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*"}]}
    ]
    assert meta["dataset_info"]["splits"][0]["num_examples"] == 5
    assert [f["name"] for f in meta["dataset_info"]["features"]] == ["id", "messages", "meta"]
    assert "| stop | 3 | 60.0% |" in body and "| length | 2 | 40.0% |" in body
    assert "| instruct | `org/instruct-8b` | abc123 | f00 |" in body
    assert "- records: 5 (split `train`, 3 parquet shards)" in body
    assert "- completion tokens: 15" in body  # 1 + 2 + 3 + 4 + 5
    assert "- prompts that failed (not in the dataset): 1" in body
    assert "codit 9.9.9" in body
    assert '"first_turn": true' in body.split("## Prompts")[1]
    assert "| top_p | 0.95 |" in body
    assert (
        "codit generate --input hf:org/prompts --output out.jsonl --instruct org/instruct-8b --mode direct"
        in body
    )
    assert (
        json.loads((folder / "codit_manifest.json").read_text())["models"]["instruct"]["revision"]
        == "abc123"
    )


def test_size_category_bounds():
    assert [size_category(n) for n in (0, 999, 1000, 250_333, 1_000_000)] == [
        "n<1K",
        "n<1K",
        "1K<n<10K",
        "100K<n<1M",
        "1M<n<10M",
    ]


def test_command_line_lists_the_changed_flags_only():
    config = {
        "input": "p.jsonl",
        "decoding": {"mode": "codit", "alpha": 0.1, "stop": ["\n\n"]},
        "continuous_batching": False,
        "chat_template_kwargs": {"enable_thinking": False},
    }
    defaults = {
        "input": None,
        "decoding": {"mode": "codit", "alpha": 0.01, "stop": []},
        "continuous_batching": True,
        "chat_template_kwargs": {},
    }
    assert command_line("generate", config, defaults) == (
        "codit generate --input p.jsonl --alpha 0.1 --stop '\n\n' --no-continuous-batching "
        "--chat-template-kwargs enable_thinking=false"
    )


def test_duplicate_ids_are_refused_with_both_lines(tmp_path):
    path = tmp_path / "dup.jsonl"
    rows = _records()[:2] + [_records()[0]]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(DataError, match=r"line 3: id 'r0' is also on line 1"):
        export(path, ExportConfig(to=str(tmp_path / "ds")))


class FakeApi:
    """Records the calls codit makes; fails when told to."""

    def __init__(self, fail: Exception | None = None):
        self.calls: list[tuple[str, dict]] = []
        self.fail = fail

    def create_repo(self, repo_id, **kwargs):
        self.calls.append(("create_repo", {"repo_id": repo_id, **kwargs}))
        if self.fail:
            raise self.fail
        return f"https://huggingface.co/datasets/{repo_id}"

    def upload_folder(self, **kwargs):
        self.calls.append(("upload_folder", kwargs))


def test_push_creates_the_repo_and_uploads_the_folder(records_file, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_secret_token")
    api = FakeApi()
    folder = tmp_path / "ds"
    summary = export(
        records_file,
        ExportConfig(to=str(folder), push_to_hub="org/codit-set", private=True),
        api=api,
    )
    assert summary.url == "https://huggingface.co/datasets/org/codit-set"
    (name1, create), (name2, upload) = api.calls
    assert (name1, name2) == ("create_repo", "upload_folder")
    assert create == {
        "repo_id": "org/codit-set",
        "token": "hf_secret_token",
        "repo_type": "dataset",
        "private": True,
        "exist_ok": True,
    }
    assert upload["repo_id"] == "org/codit-set" and upload["repo_type"] == "dataset"
    assert Path(upload["folder_path"]) == folder
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "codit_manifest.json", "data"]
    assert parse((folder / "README.md").read_text())[0]["pretty_name"] == "org/codit-set"


def test_hub_failure_is_one_sentence_without_the_token(records_file, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_secret_token")
    api = FakeApi(fail=RuntimeError("401 Unauthorized: Bearer hf_secret_token"))
    with pytest.raises(BackendError) as err:
        export(records_file, ExportConfig(to=str(tmp_path / "ds"), push_to_hub="org/x"), api=api)
    assert "hf_secret_token" not in str(err.value)
    assert "uploading" in str(err.value) and "org/x" in str(err.value)


def test_push_without_token_fails_before_writing(records_file, tmp_path, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))  # no stored login token either
    monkeypatch.setattr(
        "huggingface_hub.constants.HF_TOKEN_PATH", str(tmp_path / "hf-home" / "token")
    )
    with pytest.raises(ConfigError, match="HF_TOKEN"):
        export(
            records_file, ExportConfig(to=str(tmp_path / "ds"), push_to_hub="org/x"), api=FakeApi()
        )
    assert not (tmp_path / "ds").exists()
    with pytest.raises(ConfigError, match="ORG/NAME"):
        export(records_file, ExportConfig(to=str(tmp_path / "ds"), push_to_hub="no-slash"))


def test_cli_export_and_bad_flags(records_file, tmp_path, capsys):
    assert (
        main(
            [
                "export",
                str(records_file),
                "--format",
                "jsonl",
                "--shard-size",
                "4",
                "--to",
                str(tmp_path / "o"),
            ]
        )
        == 0
    )
    assert "5 records in 2 jsonl shard(s)" in capsys.readouterr().err
    assert main(["export", str(records_file), "--shard-size", "0"]) == 2
    assert "--shard-size must be >= 1" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "missing.jsonl")]) == 3


def test_trl_sft_trainer_trains_on_the_export(records_file, tmp_path, monkeypatch):
    """The exported folder goes into SFTTrainer as it is (id and meta columns included)."""
    pytest.importorskip("trl", reason="needs the train extra: pip install 'codit[train]'")
    from datasets import load_dataset
    from trl import SFTConfig, SFTTrainer

    from tiny_models import make_model, make_tokenizer

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    folder = tmp_path / "ds"
    export(records_file, ExportConfig(to=str(folder), shard_size=2))
    train = load_dataset(str(folder), split="train")
    tokenizer = make_tokenizer()
    args = SFTConfig(
        output_dir=str(tmp_path / "sft"),
        max_steps=2,
        per_device_train_batch_size=2,
        report_to=[],
        save_strategy="no",
        use_cpu=True,
        logging_steps=1,
        dataloader_num_workers=0,
    )
    trainer = SFTTrainer(
        model=make_model(tokenizer, 0), args=args, train_dataset=train, processing_class=tokenizer
    )
    first = trainer.train_dataset[0]
    rendered = tokenizer.decode(first["input_ids"])
    assert rendered.startswith(
        "<|user|>\nwrite three bullet points about apples<|end|>\n<|assistant|>\nthe lazy dog"
    )
    result = trainer.train()
    assert result.global_step == 2


def test_preference_pairs_without_a_manifest(tmp_path, monkeypatch):
    from datasets import load_dataset

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    path = tmp_path / "pairs.jsonl"
    rows = [
        {"id": f"d{i}", "prompt": f"q{i}", "chosen": "good", "rejected": "bad"} for i in range(3)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    summary = export(path, ExportConfig(to=str(tmp_path / "ds")))
    _, body = parse(summary.card.read_text())
    assert "Made with codit by its pipeline. Preference pairs in TRL's format" in body
    assert "| - | (no manifest) | | |" in body and "| unknown | 3 | 100.0% |" in body
    assert load_dataset(str(tmp_path / "ds"), split="train")["chosen"] == ["good"] * 3
