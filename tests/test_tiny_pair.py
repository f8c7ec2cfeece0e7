"""The shipped tiny pair: loads offline, forms a pair, generates through the CLI, and the
instruct model follows held-out instructions more often than its base."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from codit.cli.main import main
from codit.models.loading import TINY_MODELS_DIR

ROOT = Path(__file__).resolve().parent.parent
TOY_PROMPTS = ROOT / "examples" / "toy_prompts.jsonl"
# The greedy comparison runs on this fixed subset of the held-out prompts.
SUBSET = 24


@pytest.fixture(scope="module")
def pair():
    from codit.models.pair import load_pair

    return load_pair("tiny-instruct", "tiny-base", device="cpu")


def test_shipped_models_are_ordinary_model_directories():
    size = 0
    for name in ("tiny-base", "tiny-instruct"):
        path = TINY_MODELS_DIR / name
        files = {f.name for f in path.iterdir()}
        assert {
            "config.json",
            "model.safetensors",
            "generation_config.json",
            "tokenizer.json",
            "tokenizer_config.json",
        } <= files
        config = json.loads((path / "config.json").read_text())
        assert config["architectures"] == ["LlamaForCausalLM"]
        tokenizer_config = json.loads((path / "tokenizer_config.json").read_text())
        assert tokenizer_config["chat_template"] and tokenizer_config["eos_token"] == "<|end|>"
        generation = json.loads((path / "generation_config.json").read_text())
        assert generation["eos_token_id"] == config["eos_token_id"]
        size += sum(f.stat().st_size for f in path.iterdir())
    assert size <= 20 * 1024 * 1024
    for file in ("tokenizer.json", "tokenizer_config.json"):  # one tokenizer, byte for byte
        assert (TINY_MODELS_DIR / "tiny-base" / file).read_bytes() == (
            TINY_MODELS_DIR / "tiny-instruct" / file
        ).read_bytes()


def test_pair_loads_offline_and_is_compatible(pair, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from codit.models.loading import load_tokenizer
    from codit.models.pair import check_pair

    assert type(pair.instruct.model).__name__ == "LlamaForCausalLM"
    assert pair.instruct.path == str(TINY_MODELS_DIR / "tiny-instruct")
    assert pair.base is not None and pair.base.path == str(TINY_MODELS_DIR / "tiny-base")
    assert pair.vocab_size == len(pair.tokenizer)
    assert pair.stop_ids == [pair.tokenizer.convert_tokens_to_ids("<|end|>")]
    base_tokenizer = load_tokenizer("tiny-base")
    assert (
        check_pair(
            "tiny-instruct",
            "tiny-base",
            pair.tokenizer,
            base_tokenizer,
            pair.instruct.model.config,
            pair.base.model.config,
        )
        == pair.vocab_size
    )
    # post-training changed the weights, not the architecture
    assert pair.instruct.model.config.to_dict() | {
        "_name_or_path": ""
    } == pair.base.model.config.to_dict() | {"_name_or_path": ""}


@pytest.mark.parametrize("mode", ["direct", "codit"])
def test_generate_cli_with_the_tiny_pair(mode, tmp_path):
    out = tmp_path / f"{mode}.jsonl"
    rc = main(
        [
            "generate",
            "--input",
            str(TOY_PROMPTS),
            "--output",
            str(out),
            "--mode",
            mode,
            "--temperature",
            "0",
            "--max-new-tokens",
            "48",
            "--no-progress",
            "--device",
            "cpu",
        ]
    )
    assert rc == 0
    prompts = [json.loads(line) for line in TOY_PROMPTS.read_text().splitlines()]
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["id"] for r in records) == sorted(p["id"] for p in prompts)
    by_id = {p["id"]: p["prompt"] for p in prompts}
    for record in records:
        user, assistant = record["messages"]
        assert user == {"role": "user", "content": by_id[record["id"]]}
        assert assistant["role"] == "assistant" and assistant["content"].strip()
        meta = record["meta"]
        assert meta["mode"] == mode and meta["instruct"] == "tiny-instruct"
        assert meta["finish_reason"] in ("stop", "length") and 1 <= meta["completion_tokens"] <= 48
        assert (meta.get("base") == "tiny-base") == (mode == "codit")
    # the instruct model answers and stops: most answers end on <|end|> well before the limit
    assert sum(r["meta"]["finish_reason"] == "stop" for r in records) >= len(records) // 2


def test_instruct_follows_heldout_instructions_more_often_than_base():
    from codit.tiny.evaluate import EvalConfig, evaluate

    config = EvalConfig(
        settings=("base", "direct"), limit=SUBSET, max_new_tokens=128, temperature=0.0
    )
    results, prompts = evaluate(config)
    base, instruct = (r.metrics for r in results)
    assert len(prompts) == SUBSET
    assert instruct["instruction_level_strict"] >= base["instruction_level_strict"] + 0.2
    assert instruct["prompt_level_strict"] > base["prompt_level_strict"]


def test_tiny_build_is_deterministic_and_loadable(tmp_path):
    small = [
        "--pages",
        "100",
        "--conversations",
        "60",
        "--heldout",
        "6",
        "--vocab-size",
        "400",
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
        "3",
        "--sft-batch",
        "4",
        "--no-progress",
    ]
    for run in ("a", "b"):
        assert (
            main(["tiny", "build", "--output-dir", str(tmp_path / run), "--seed", "3", *small]) == 0
        )
    for name in ("tiny-base", "tiny-instruct"):
        a, b = tmp_path / "a" / name, tmp_path / "b" / name
        assert (a / "model.safetensors").read_bytes() == (b / "model.safetensors").read_bytes()
        assert (a / "tokenizer.json").read_bytes() == (b / "tokenizer.json").read_bytes()
    assert (tmp_path / "a" / "heldout.jsonl").read_text() == (
        tmp_path / "b" / "heldout.jsonl"
    ).read_text()
    base = (tmp_path / "a" / "tiny-base" / "model.safetensors").read_bytes()
    assert base != (tmp_path / "a" / "tiny-instruct" / "model.safetensors").read_bytes()
    manifest = json.loads((tmp_path / "a" / "build.json").read_text())
    assert manifest["config"]["seed"] == 3 and manifest["data"]["heldout_prompts"] == 6

    from codit.generation.texts import LocalGenerator

    generator = LocalGenerator(
        str(tmp_path / "a" / "tiny-instruct"), str(tmp_path / "a" / "tiny-base"), device="cpu"
    )
    [answer] = generator.generate(
        [[{"role": "user", "content": "Tell me about it."}]], "codit", max_new_tokens=4
    )
    assert answer.completion_tokens >= 1


def test_tiny_cli_help_and_errors(capsys):
    for argv in (["tiny", "--help"], ["tiny", "build", "--help"], ["tiny", "eval", "--help"]):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 0
    assert "build" in capsys.readouterr().out
    assert main(["tiny"]) == 2
    assert main(["tiny", "build", "--layers", "0", "--output-dir", "unused"]) == 2
    assert main(["tiny", "eval", "--settings", "nonsense"]) == 2
    assert main(["tiny", "eval", "--heldout", "no/such/file.jsonl"]) == 3


def test_cli_module_does_not_import_torch():
    code = "import sys, codit.cli.tiny; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
