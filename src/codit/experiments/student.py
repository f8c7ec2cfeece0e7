"""The student of ``codit experiment codit``: a small GPT-NeoX base model with its own tokenizer.

The CoDIT paper trains students of other architectures than the teacher (a Qwen3 teacher, a
Llama-3.1 student) to show that what CoDIT puts into the data is text, not weights. The tiny
pair is Llama with one BPE tokenizer; this student is GPT-NeoX (parallel attention and MLP,
LayerNorm, partial rotary embeddings, untied output layer) with a BPE tokenizer of its own,
pre-trained on pages of the same toy world drawn with another seed, by the tiny pair's own loop
(``codit.tiny.train``: one page per sequence, ending with ``<|end|>``). It knows the world as
the teacher's base does and has never seen a chat turn.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

CONTEXT = 512  # the teacher's context length
FACTS = "student.json"


def pretrain_student(
    path: Path,
    *,
    world_seed: int,
    hidden: int,
    layers: int,
    heads: int,
    vocab: int,
    pages: int,
    steps: int,
    batch: int,
    lr: float,
    progress: bool = False,
) -> dict[str, Any]:
    """Pre-train the student into ``path`` once; later calls return the saved facts.

    Args:
        path: the model directory to write (an ordinary Hugging Face directory).
        world_seed: the teacher's world; the pages are drawn with ``world_seed + 1``.
        hidden, layers, heads: the GPT-NeoX shape (MLP width ``4 * hidden``).
        vocab: the size of the student's own BPE vocabulary.
        pages, steps, batch, lr: the pre-training data and schedule.
        progress: show the training loop's progress bar.

    Returns:
        Facts for the report: architecture, parameters, vocabulary, tokens, final loss, seconds.
    """
    if (path / FACTS).is_file():
        return json.loads((path / FACTS).read_text())
    import torch
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    from codit.tiny.build import save_model
    from codit.tiny.corpus import corpus
    from codit.tiny.tokenizer import END, train_tokenizer
    from codit.tiny.train import OptimConfig, seed_everything, train
    from codit.tiny.world import make_world

    start = time.time()
    texts = corpus(make_world(world_seed), pages, world_seed + 1)
    tokenizer = train_tokenizer(texts, vocab, CONTEXT)
    end_id = tokenizer.convert_tokens_to_ids(END)
    examples = []
    for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]:
        ids = [*ids[: CONTEXT - 1], end_id]
        examples.append((ids, ids))
    deterministic = torch.are_deterministic_algorithms_enabled()
    seed_everything(world_seed)  # turns deterministic kernels on; restored below (SFT on GPU)
    try:
        model = GPTNeoXForCausalLM(
            GPTNeoXConfig(
                vocab_size=len(tokenizer),
                hidden_size=hidden,
                num_hidden_layers=layers,
                num_attention_heads=heads,
                intermediate_size=4 * hidden,
                max_position_embeddings=CONTEXT,
                bos_token_id=None,
                eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id,
            )
        )
        losses = train(
            model,
            examples,
            tokenizer.pad_token_id,
            OptimConfig(steps, batch, lr),
            world_seed,
            "student pre-training",
            progress,
        )
    finally:
        torch.use_deterministic_algorithms(deterministic)
    # written beside and renamed, so a killed run never leaves a half-saved student behind
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    save_model(model, tokenizer, tmp)
    facts = {
        "architecture": type(model).__name__,
        "parameters": sum(p.numel() for p in model.parameters()),
        "vocab_size": len(tokenizer),
        "pages": len(texts),
        "corpus_tokens": sum(len(ids) for ids, _ in examples),
        "final_loss": round(sum(losses[-20:]) / len(losses[-20:]), 4),
        "seconds": round(time.time() - start, 1),
    }
    (tmp / FACTS).write_text(json.dumps(facts, indent=2) + "\n")
    shutil.rmtree(path, ignore_errors=True)
    os.replace(tmp, path)
    return facts
