"""SFT on TRL: the loss falls on the answers only (both masking paths), training lowers it, and
the saved directory loads and generates through codit."""

from __future__ import annotations

import json

import pytest

from codit.training.config import TrainConfig
from training_fixtures import MARKED_TEMPLATE, save_model, sft_records, write_jsonl

pytest.importorskip("trl", reason="needs the train extra: pip install 'codit[train]'")


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("sft")


def _trained_text(trainer, row: int) -> str:
    """The tokens of one example that carry a loss, as the trainer's collator labels them."""
    batch = trainer.data_collator([trainer.train_dataset[row]])
    ids, labels = batch["input_ids"][0], batch["labels"][0]
    return trainer.processing_class.decode(ids[labels != -100])


def test_template_without_markers_trains_the_last_answer_only(root):
    from codit.training.sft import build_sft_trainer

    model = save_model(root / "plain")
    data = write_jsonl(root / "plain.jsonl", sft_records(4))
    trainer, facts = build_sft_trainer(
        TrainConfig(model=str(model), data=str(data), output=str(root / "o1"))
    )
    assert facts["loss_mask"] == "completion"
    assert _trained_text(trainer, 0) == "the lazy dog<|end|>\n"
    full = trainer.processing_class.decode(trainer.train_dataset[0]["input_ids"])
    assert full.startswith(
        "<|user|>\nwrite three bullet points about apples<|end|>\n<|assistant|>\n"
    )


def test_template_with_generation_markers_trains_every_assistant_turn(root):
    from codit.training.sft import build_sft_trainer

    model = save_model(root / "marked", chat_template=MARKED_TEMPLATE)
    two_turns = {
        "messages": [
            {"role": "user", "content": "the quick brown fox"},
            {"role": "assistant", "content": "the lazy dog"},
            {"role": "user", "content": "all lowercase letters please"},
            {"role": "assistant", "content": "no commas at all"},
        ]
    }
    data = write_jsonl(root / "marked.jsonl", [two_turns])
    trainer, facts = build_sft_trainer(
        TrainConfig(model=str(model), data=str(data), output=str(root / "o2"))
    )
    assert facts["loss_mask"] == "assistant"
    assert _trained_text(trainer, 0) == "the lazy dog<|end|>no commas at all<|end|>"


def test_training_lowers_the_loss_and_the_model_generates(root, capsys):
    from codit.cli.main import main
    from codit.training.sft import train_sft

    model = save_model(root / "start")
    data = write_jsonl(root / "train.jsonl", sft_records(8))
    out = root / "trained"
    manifest = train_sft(
        TrainConfig(
            model=str(model),
            data=str(data),
            output=str(out),
            max_steps=6,
            lr=1e-2,
            batch_size=4,
            logging_steps=1,
            eval_split=0.25,
        )
    )
    losses = [e["loss"] for e in manifest["metrics"]["logged"]]
    assert len(losses) == 6 and losses[-1] < losses[0]
    saved = json.loads((out / "codit_train_config.json").read_text())
    assert saved["data"] | {"path": None} == {
        "path": None,
        "records": 8,
        "train": 6,
        "eval": 2,
        "loss_mask": "completion",
        "chat_template": "model",
    }
    assert saved["resolved"]["learning_rate"] == 1e-2 and saved["resolved"]["bf16"] is False
    assert saved["versions"]["trl"]
    for name in (
        "config.json",
        "model.safetensors",
        "generation_config.json",
        "tokenizer.json",
        "chat_template.jinja",
    ):
        assert (out / name).is_file(), name

    prompts = write_jsonl(
        root / "prompts.jsonl", [{"id": "p", "prompt": "write three bullet points about apples"}]
    )
    rc = main(
        [
            "generate",
            "--instruct",
            str(out),
            "--mode",
            "direct",
            "--input",
            str(prompts),
            "--output",
            str(root / "gen.jsonl"),
            "--max-new-tokens",
            "4",
            "--no-progress",
        ]
    )
    assert rc == 0, capsys.readouterr().err
    record = json.loads((root / "gen.jsonl").read_text().splitlines()[0])
    assert record["messages"][-1]["role"] == "assistant"


def test_lora_saves_the_merged_model_and_the_adapter(root):
    from codit.models.loading import load_model
    from codit.training.sft import train_sft

    model = save_model(root / "lora_start")
    data = write_jsonl(root / "lora.jsonl", sft_records(4))
    out = root / "lora"
    manifest = train_sft(
        TrainConfig(
            model=str(model),
            data=str(data),
            output=str(out),
            max_steps=2,
            lr=1e-2,
            batch_size=2,
            lora_r=4,
            lora_targets=("q_proj,v_proj",),
        )
    )
    assert manifest["saved"]["adapter"] == str(out / "adapter")
    assert (out / "adapter" / "adapter_config.json").is_file()
    assert manifest["resolved"]["lora_targets"] == ["q_proj", "v_proj"]
    loaded = load_model(str(out), device="cpu").model
    assert not any("lora" in name for name, _ in loaded.named_parameters())  # merged, plain weights


def test_a_tokenizer_without_chat_template_gets_the_fallback_and_keeps_it(root):
    from codit.training.model import FALLBACK_CHAT_TEMPLATE
    from codit.training.sft import build_sft_trainer

    model = save_model(root / "bare", chat_template="")
    data = write_jsonl(root / "bare.jsonl", sft_records(2))
    trainer, facts = build_sft_trainer(
        TrainConfig(model=str(model), data=str(data), output=str(root / "o3"))
    )
    assert facts["chat_template"] == "codit fallback" and facts["loss_mask"] == "assistant"
    assert trainer.processing_class.chat_template == FALLBACK_CHAT_TEMPLATE  # saved with the model
    assert _trained_text(trainer, 0) == "the lazy dog<|end|>"  # the answer and the EOS
