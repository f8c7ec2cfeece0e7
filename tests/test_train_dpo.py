"""DPO on TRL reads codit's preference records as they are and lowers its loss."""

from __future__ import annotations

import json

import pytest

from codit.training.config import DpoConfig
from training_fixtures import save_model, write_jsonl

pytest.importorskip("trl", reason="needs the train extra: pip install 'codit[train]'")


def ecd_records() -> list[dict]:
    """Preference records the way ``codit ecd`` writes them: strings or turns, any meta."""
    strings = [
        {
            "id": f"s{i}",
            "prompt": "write three bullet points about apples",
            "chosen": "apples and pears",
            "rejected": "the lazy dog",
            "meta": {"stage": i, "constraints": [{"id": "punctuation:no_comma"}]},
        }
        for i in range(4)
    ]
    turns = [
        {
            "id": f"t{i}",
            "prompt": [{"role": "user", "content": "all lowercase letters please"}],
            "chosen": [{"role": "assistant", "content": "numbers 0 1 2"}],
            "rejected": [{"role": "assistant", "content": "NO COMMAS"}],
            "meta": {"judge": None},
        }
        for i in range(4)
    ]
    return strings + turns


def test_dpo_trains_on_preference_records_unchanged(tmp_path):
    from codit.models.loading import load_model
    from codit.training.dpo import build_dpo_trainer, train_dpo

    model = save_model(tmp_path / "start")
    data = write_jsonl(tmp_path / "prefs.jsonl", ecd_records())
    config = DpoConfig(
        model=str(model),
        data=str(data),
        output=str(tmp_path / "out"),
        max_steps=5,
        lr=1e-3,
        batch_size=4,
        logging_steps=1,
        eval_split=0.25,
        beta=0.1,
    )
    trainer, _ = build_dpo_trainer(config)
    # string records went through the chat template like the conversational ones
    prompt = trainer.processing_class.decode(trainer.train_dataset[0]["prompt_ids"])
    assert prompt.startswith("<|user|>\n") and prompt.endswith("<|assistant|>\n")

    manifest = train_dpo(DpoConfig(**{**config.__dict__, "output": str(tmp_path / "trained")}))
    losses = [e["loss"] for e in manifest["metrics"]["logged"]]
    assert len(losses) == 5 and losses[-1] < losses[0]
    saved = json.loads((tmp_path / "trained" / "codit_train_config.json").read_text())
    assert saved["method"] == "dpo" and saved["config"]["beta"] == 0.1
    assert saved["data"]["records"] == 8 and saved["data"]["eval"] == 2
    assert load_model(str(tmp_path / "trained"), device="cpu").model is not None
