"""The CoIN trainer: without its contrastive term it is plain SFT on both sequences; with it,
a few steps lower the loss and leave a model codit's loader reads."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from codit.errors import ConfigError
from codit.training.config import CoinConfig
from training_fixtures import coin_records, save_model, write_jsonl


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("coin")
    return save_model(root / "model"), write_jsonl(root / "pairs.jsonl", coin_records(8)), root


def _sft_reference(model, sequences: list[tuple[list[int], list[int]]]) -> torch.Tensor:
    """Mean answer cross-entropy over a set of sequences, each run alone without padding."""
    total, count = torch.tensor(0.0), 0
    for ids, labels in sequences:
        logits = model(input_ids=torch.tensor([ids])).logits[0, :-1]
        target = torch.tensor(labels[1:])
        keep = target != -100
        total = total + F.cross_entropy(logits[keep], target[keep], reduction="sum")
        count += int(keep.sum())
    return total / count


def test_without_the_contrastive_term_it_is_sft_on_both_sequences(setup):
    from codit.training.coin_trainer import build_coin_trainer

    model_dir, data, root = setup
    config = CoinConfig(
        model=str(model_dir),
        data=str(data),
        output=str(root / "off"),
        batch_size=4,
        contrastive=False,
        max_steps=1,
    )
    trainer, facts = build_coin_trainer(config)
    assert facts["train"] == 8 and facts["grouped"] == 8
    batch = next(iter(trainer.get_train_dataloader()))
    model = trainer.model.eval()
    with torch.no_grad():
        got = trainer.compute_loss(model, dict(batch))
        rows = trainer.train_dataset[:4]
        orig = list(zip(rows["orig_input_ids"], rows["orig_labels"], strict=True))
        para = list(zip(rows["para_input_ids"], rows["para_labels"], strict=True))
        expected = _sft_reference(model, orig) + _sft_reference(model, para)
    assert got.item() == pytest.approx(expected.item(), rel=1e-5)

    on = CoinConfig(**{**config.__dict__, "contrastive": True, "output": str(root / "on")})
    trainer_on, _ = build_coin_trainer(on)
    with torch.no_grad():
        with_ctr = trainer_on.compute_loss(trainer_on.model.eval(), dict(batch))
    assert with_ctr.item() > got.item()  # the contrastive term adds to the same generation loss


def test_pair_negatives_are_micro_batches_of_two_in_one_pass(setup):
    # The loss of a batch of 4 under --negatives pair is the mean of the in-batch losses of its
    # two halves, each computed alone: the authors' micro-batches of two, accumulated.
    from codit.training.coin_trainer import build_coin_trainer

    model_dir, data, root = setup
    common = {"model": str(model_dir), "data": str(data), "max_steps": 1, "seed": 2}
    pair = CoinConfig(**common, output=str(root / "pair"), batch_size=4, negatives="pair")
    two = CoinConfig(**common, output=str(root / "two"), batch_size=2)
    trainer, _ = build_coin_trainer(pair)
    trainer_two, _ = build_coin_trainer(two)
    model = trainer.model.eval()
    batch = next(iter(trainer.get_train_dataloader()))
    rows = [trainer.train_dataset[i] for i in range(4)]
    with torch.no_grad():
        got = trainer.compute_loss(model, dict(batch)).item()
        halves = [
            trainer_two.compute_loss(model, trainer.data_collator(rows[i : i + 2])).item()
            for i in (0, 2)
        ]
    assert got == pytest.approx(sum(halves) / 2, rel=1e-5)
    with pytest.raises(ConfigError, match="even --batch-size"):
        CoinConfig(**common, output="o", batch_size=3, negatives="pair")


def test_training_lowers_the_loss_and_saves_a_loadable_model(setup):
    from codit.models.loading import load_model
    from codit.training.coin_trainer import train_coin

    model_dir, data, root = setup
    out = root / "trained"
    config = CoinConfig(
        model=str(model_dir),
        data=str(data),
        output=str(out),
        batch_size=4,
        max_steps=8,
        lr=3e-3,
        logging_steps=1,
        eval_split=0.25,
        seed=1,
    )
    manifest = train_coin(config)
    losses = [e["loss"] for e in manifest["metrics"]["logged"]]
    assert len(losses) == 8 and losses[-1] < losses[0]
    assert manifest["metrics"]["eval_loss"] is not None
    saved = json.loads((out / "codit_train_config.json").read_text())
    assert saved["method"] == "coin" and saved["config"]["temperature"] == 0.05
    assert saved["data"]["train"] == 6 and saved["data"]["eval"] == 2
    assert not (out / "checkpoints").exists()
    loaded = load_model(str(out), device="cpu")
    assert loaded.model.config.num_hidden_layers == 2
