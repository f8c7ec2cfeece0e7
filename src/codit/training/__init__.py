"""Training on codit's records: SFT and DPO on TRL, and CoIN (contrastive instruction tuning).

One module per concept: ``config`` (settings), ``data`` (reading and checking records), ``model``
(loading, LoRA, saving), ``outputs`` (the saved directory and manifest), ``sft``, ``dpo``,
``coin`` (the pure CoIN loss), ``collator`` (CoIN batches) and ``coin_trainer``. Importing this
package imports neither torch nor TRL.
"""
