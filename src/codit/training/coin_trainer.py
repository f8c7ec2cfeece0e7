"""Training with CoIN: the transformers ``Trainer`` with one override, ``compute_loss``.

One forward pass covers the (2B, L) batch of ``CoinCollator`` (B originals over their B
paraphrases). The generation loss is the answer cross-entropy of the originals plus that of the
paraphrases; the contrastive term compares the final hidden states at the last real token
(``coin.last_token_pool``). With ``contrastive=False`` the loss is exactly plain SFT on both
sequences, which is the paper's baseline. With ``negatives="pair"`` every block of two rows is
scored on its own (its generation loss, InfoNCE and weight) and the blocks are averaged, which
is the authors' micro-batch of two under gradient accumulation, computed in one forward pass.

The dataset is read in the order ``collator.pair_order`` lays out (sequential sampling), so
hard negatives stay batch neighbours. The order is fixed for the run, also across epochs.
"""

from __future__ import annotations

import logging
from typing import Any

from transformers import Trainer

from codit.errors import DataError, ModelError
from codit.training.coin import (
    answer_loss,
    answer_loss_sums,
    coin_loss,
    last_token_pool,
    pair_blocks,
)
from codit.training.collator import IGNORE, CoinCollator, encode_pair, pair_order
from codit.training.config import CoinConfig, trainer_arguments
from codit.training.data import load_coin_pairs, split
from codit.training.model import load_student, load_student_tokenizer, lora_config
from codit.training.outputs import finish

log = logging.getLogger(__name__)


class CoinTrainer(Trainer):
    """``Trainer`` whose loss is CoIN's; everything else (optimiser, schedule, LoRA, logging) is
    the parent's."""

    # compute_loss returns a per-batch mean: the parent divides it over accumulation steps.
    loss_is_scaled_for_ga = False

    def __init__(self, *args: Any, coin: CoinConfig, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.coin = coin

    def compute_loss(
        self,
        model: Any,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: Any = None,
    ) -> Any:
        """CoIN's loss on a (2B, L) batch: rows [0, B) originals, rows [B, 2B) paraphrases."""
        labels = inputs["labels"]
        outputs = model(
            input_ids=inputs["input_ids"],
            attention_mask=inputs["attention_mask"],
            position_ids=inputs["position_ids"],
            output_hidden_states=self.coin.contrastive,
            use_cache=False,
        )
        half = labels.shape[0] // 2
        pair = self.coin.negatives == "pair"
        if pair:  # per block of two rows, as the authors' micro-batches of two
            gen = _block_answer_loss(outputs.logits[:half], labels[:half]) + _block_answer_loss(
                outputs.logits[half:], labels[half:]
            )
        else:
            gen = answer_loss(outputs.logits[:half], labels[:half]) + answer_loss(
                outputs.logits[half:], labels[half:]
            )
        if self.coin.contrastive:
            pooled = last_token_pool(outputs.hidden_states[-1], inputs["attention_mask"])  # (2B, D)
            loss = coin_loss(
                pooled[:half],
                pooled[half:],
                gen,
                self.coin.temperature,
                self.coin.max_ratio,
                self.coin.negatives,
            )
        elif pair:
            loss = gen.mean()
        else:
            loss = gen
        return (loss, outputs) if return_outputs else loss


def _block_answer_loss(logits: Any, labels: Any) -> Any:
    """(ceil(B / 2),) the answer cross-entropy of each block of two rows (mean over its tokens)."""
    sums, counts = answer_loss_sums(logits, labels)
    return pair_blocks(sums) / pair_blocks(counts).clamp(min=1)


def _encode(
    tokenizer: Any, records: list[dict[str, Any]], max_length: int
) -> tuple[list[dict], list[str | None], int]:
    """Encoded rows and their groups, without pairs whose answer the truncation removed."""
    rows, groups, dropped = [], [], 0
    for record in records:
        row = encode_pair(tokenizer, record, max_length)
        if all(t == IGNORE for t in row["orig_labels"]) or all(
            t == IGNORE for t in row["para_labels"]
        ):
            dropped += 1
            continue
        rows.append(row)
        groups.append(record["group"])
    return rows, groups, dropped


def build_coin_trainer(
    config: CoinConfig, progress: bool = False
) -> tuple[CoinTrainer, dict[str, Any]]:
    """Check the data, load the model and set up the CoIN trainer (not yet trained).

    Returns:
        (the trainer, facts for the manifest).
    """
    from transformers import TrainingArguments

    if "train_sampling_strategy" not in TrainingArguments.__dataclass_fields__:
        raise ModelError(
            "this transformers version cannot read the data in order (no train_sampling_strategy), "
            "which CoIN's batch layout needs; upgrade transformers"
        )
    config.check_output()
    records = load_coin_pairs(str(config.data))
    train, held = split(records, config.eval_split, config.seed)
    tokenizer, template_source = load_student_tokenizer(str(config.model))
    train_rows, train_groups, dropped = _encode(tokenizer, train, config.max_length)
    held_rows, _, dropped_held = _encode(tokenizer, held, config.max_length)
    if dropped + dropped_held:
        log.warning(
            "%d pairs have no answer token left within --max-length %d; skipped",
            dropped + dropped_held,
            config.max_length,
        )
    if not train_rows:
        raise DataError(
            f"no training pair of {config.data} keeps an answer token within --max-length {config.max_length}"
        )
    order = pair_order(train_groups, config.batch_size, config.seed)
    model, model_info = load_student(config)
    if config.lora:
        from peft import get_peft_model

        model = get_peft_model(model, lora_config(config))

    from datasets import Dataset

    args = TrainingArguments(
        **trainer_arguments(config, "coin", model.device.type == "cuda", bool(held_rows), progress),
        train_sampling_strategy="sequential",
        remove_unused_columns=False,  # the collator reads orig_*/para_* columns
        label_names=["labels"],
        prediction_loss_only=True,
    )
    trainer = CoinTrainer(
        model=model,
        args=args,
        data_collator=CoinCollator(tokenizer.pad_token_id),
        train_dataset=Dataset.from_list([train_rows[i] for i in order]),
        eval_dataset=Dataset.from_list(held_rows) if held_rows else None,
        processing_class=tokenizer,
        coin=config,
    )
    facts = {
        "records": len(records),
        "train": len(train_rows),
        "eval": len(held_rows),
        "dropped_too_long": dropped + dropped_held,
        "grouped": sum(g is not None for g in train_groups),
        "chat_template": template_source,
        "model_info": model_info,
    }
    return trainer, facts


def train_coin(config: CoinConfig, progress: bool = False) -> dict[str, Any]:
    """Train ``config.model`` with CoIN on the pairs of ``config.data`` and save it.

    Returns:
        The manifest written to ``OUTPUT/codit_train_config.json``.
    """
    trainer, facts = build_coin_trainer(config, progress)
    trainer.train()
    return finish(trainer, config, "coin", facts)
