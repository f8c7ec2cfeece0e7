"""Build the tiny pair end to end: world -> corpus and conversations -> tokenizer -> base -> instruct.

``build`` is one function to read top to bottom. From a seed it draws the world, writes the
pre-training corpus and the instruction conversations, trains the tokenizer on both, pre-trains
a small Llama model on the corpus (``tiny-base``), fine-tunes a copy on the conversations'
answers (``tiny-instruct``) and saves both as ordinary Hugging Face model directories, plus the
held-out prompts in IFEval format and a ``build.json`` manifest. The text is exactly the same for
a seed on every machine; the weights are the same on one machine (see ``train``).

A build never writes into the pair it replaces. It takes the folder's lock, works in
``OUTPUT/.tiny-build/`` (its ``state.json`` names the config and the finished stages, each
model saved beside and renamed into place there), and only when both models are trained moves
them into ``OUTPUT`` (``build.json`` is removed first and written last: a folder without it is
an unfinished build). A build killed at any instant therefore leaves the old pair whole (or,
killed during the two renames, the new ``tiny-base`` beside the old ``tiny-instruct``, with no
``build.json``), and rerunning the same command resumes: the data and the tokenizer are made
again (the same for a seed), a finished pre-training or fine-tuning is loaded instead of
trained again, a started move is finished. The weights equal those of an uninterrupted build.
A rerun with other settings discards the unfinished build, with a notice.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codit.io.atomic import no_space, out_of_space, write_json, write_lines
from codit.io.lock import OutputLock
from codit.io.manifest import read_json
from codit.settings import check, setting

log = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parent
MODELS_DIR = PACKAGE_DIR / "models"
HELDOUT_PATH = PACKAGE_DIR / "data" / "heldout.jsonl"
STAGING = ".tiny-build"  # an unfinished build: its state and the models it finished
PAIR = ("tiny-base", "tiny-instruct")


@dataclass(frozen=True)
class BuildConfig:
    """Everything that defines the tiny pair. Fields become ``codit tiny build`` flags."""

    seed: int = setting(0, "seed of the world, the data and the training")
    pages: int = setting(16000, "pre-training pages (a few documents about one entity each)", ge=1)
    conversations: int = setting(6000, "post-training conversations", ge=1)
    heldout: int = setting(120, "held-out evaluation prompts", ge=1)
    vocab_size: int = setting(
        2048, "BPE vocabulary size, special tokens included (bytes and special tokens: 300)", ge=300
    )
    hidden_size: int = setting(192, "model width, a multiple of --heads")
    layers: int = setting(4, "decoder layers", ge=1)
    heads: int = setting(6, "attention heads", ge=1)
    intermediate_size: int = setting(512, "MLP width")
    context: int = setting(512, "context length of the models")
    pretrain_steps: int = setting(500, "pre-training steps", ge=1)
    pretrain_batch: int = setting(32, "pre-training pages per step", ge=1)
    pretrain_lr: float = setting(2e-3, "peak pre-training learning rate", gt=0, lt=1)
    sft_steps: int = setting(500, "fine-tuning steps", ge=1)
    sft_batch: int = setting(32, "fine-tuning conversations per step", ge=1)
    sft_lr: float = setting(1e-3, "peak fine-tuning learning rate", gt=0, lt=1)
    threads: int = setting(
        0, "CPU threads for training, 0 = torch's default; 1 is faster on a busy machine", ge=0
    )

    def __post_init__(self) -> None:
        problems = []
        if self.hidden_size % max(self.heads, 1):
            problems.append(
                f"--hidden-size ({self.hidden_size}) must be a multiple of --heads ({self.heads})"
            )
        check(self, problems)


@dataclass(frozen=True)
class BuildReport:
    """What a build wrote and how long each part took."""

    base_dir: Path
    instruct_dir: Path
    heldout_path: Path
    seconds: dict[str, float]
    final_loss: dict[str, float]


def _model_config(config: BuildConfig, tokenizer: Any) -> Any:
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size,
        num_hidden_layers=config.layers,
        num_attention_heads=config.heads,
        num_key_value_heads=config.heads,
        max_position_embeddings=config.context,
        tie_word_embeddings=True,  # halves the weights on disk; standard for small models
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )


def save_model(model: Any, tokenizer: Any, path: Path) -> None:
    """Write an ordinary model directory: config, safetensors, generation config, tokenizer.

    The tokenizer config is written in the portable form (``PreTrainedTokenizerFast`` class,
    chat template inline) so that transformers 4.x reads it as well as 5.x.
    """
    from transformers import GenerationConfig

    path.mkdir(parents=True, exist_ok=True)
    model.generation_config = GenerationConfig(
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id
    )
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    config_path = path / "tokenizer_config.json"
    settings = json.loads(config_path.read_text())
    settings["tokenizer_class"] = "PreTrainedTokenizerFast"
    extra = settings.pop("extra_special_tokens", None)
    if extra is not None:
        settings["additional_special_tokens"] = extra
    settings["chat_template"] = tokenizer.chat_template
    write_json(config_path, settings)
    (path / "chat_template.jinja").unlink(missing_ok=True)


def build(
    config: BuildConfig,
    output_dir: Path = MODELS_DIR,
    heldout_path: Path | None = None,
    progress: bool = False,
) -> BuildReport:
    """Build ``tiny-base`` and ``tiny-instruct`` under ``output_dir`` from ``config``.

    Args:
        config: the world, data, model and training settings.
        output_dir: where the two model directories and ``build.json`` go.
        heldout_path: where the held-out prompts go (IFEval jsonl); default: the package's
            ``tiny/data/heldout.jsonl`` when building into the package, else
            ``output_dir/heldout.jsonl``.
        progress: show progress bars for the training loops.
    """
    output_dir = Path(output_dir)
    with OutputLock(output_dir, "tiny build"):  # two builds into one folder would mix weights
        return _build(config, output_dir, heldout_path, progress)


def _build(
    config: BuildConfig, output_dir: Path, heldout_path: Path | None, progress: bool
) -> BuildReport:
    import torch

    from codit import __version__
    from codit.config import to_dict
    from codit.tiny.conversations import instruction_data
    from codit.tiny.corpus import corpus
    from codit.tiny.tokenizer import END, encode_conversation, train_tokenizer
    from codit.tiny.train import OptimConfig, seed_everything, train
    from codit.tiny.world import make_world

    if heldout_path is None:
        heldout_path = (
            HELDOUT_PATH if output_dir.resolve() == MODELS_DIR else output_dir / "heldout.jsonl"
        )
    seconds: dict[str, float] = {}
    start = clock = time.time()
    cpu_start = time.process_time()

    def lap(name: str) -> None:
        nonlocal clock
        seconds[name] = round(time.time() - clock, 1)
        clock = time.time()

    world = make_world(config.seed)
    pages = corpus(world, config.pages, config.seed)
    chats, heldout = instruction_data(world, config.conversations, config.heldout, config.seed)
    lap("data")

    texts = pages + [e.prompt + "\n" + e.response for e in chats]
    tokenizer = train_tokenizer(texts, config.vocab_size, config.context)
    end_id = tokenizer.convert_tokens_to_ids(END)
    pretraining = []
    for ids in tokenizer(pages, add_special_tokens=False)["input_ids"]:
        ids = [*ids[: config.context - 1], end_id]
        pretraining.append((ids, ids))
    sft = [encode_conversation(tokenizer, e.messages()) for e in chats]
    sft = [(ids[: config.context], labels[: config.context]) for ids, labels in sft]
    lap("tokenizer")

    if config.threads:
        torch.set_num_threads(config.threads)
    seed_everything(config.seed)
    from transformers import LlamaForCausalLM

    pad_id = tokenizer.pad_token_id
    staging = output_dir / STAGING
    state = _unfinished(staging, to_dict(config))
    stages = state["stages"]
    if "finetune" not in stages:  # else both models are trained: only the move is left
        if "pretrain" in stages:
            model = LlamaForCausalLM.from_pretrained(staging / "tiny-base")
        else:
            model = LlamaForCausalLM(_model_config(config, tokenizer))
            losses = train(
                model,
                pretraining,
                pad_id,
                OptimConfig(config.pretrain_steps, config.pretrain_batch, config.pretrain_lr),
                config.seed,
                "pretrain",
                progress,
            )
            lap("pretrain")
            _finish_stage(staging, state, "pretrain", model, tokenizer, losses, seconds)
        instruct = copy.deepcopy(model)
        losses = train(
            instruct,
            sft,
            pad_id,
            OptimConfig(config.sft_steps, config.sft_batch, config.sft_lr, min_lr_ratio=0.0),
            config.seed,
            "finetune",
            progress,
        )
        lap("finetune")
        _finish_stage(staging, state, "finetune", instruct, tokenizer, losses, seconds)

    (output_dir / "build.json").unlink(missing_ok=True)  # the pair is being replaced
    _move_pair(staging, output_dir)
    base_dir, instruct_dir = output_dir / "tiny-base", output_dir / "tiny-instruct"
    write_lines(heldout_path, [example.ifeval() for example in heldout])
    for name in ("pretrain", "finetune"):  # a resumed build reports the stages it loaded
        seconds.setdefault(name, stages[name]["seconds"])
    seconds["total"] = round(time.time() - start, 1)
    seconds["cpu"] = round(time.process_time() - cpu_start, 1)  # > total when both cores worked
    final = {name: stages[name]["final_loss"] for name in ("pretrain", "finetune")}
    manifest = {
        "codit_version": __version__,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        # other work on the machine slows a build down; the load average tells how busy it was
        "load_average_1min_at_end": round(os.getloadavg()[0], 2),
        "config": to_dict(config),
        "seconds": seconds,
        "final_loss": final,
        "parameters": stages["pretrain"]["parameters"],
        "data": {
            "corpus_tokens": sum(len(ids) for ids, _ in pretraining),
            "conversations": len(chats),
            "answer_tokens": sum(sum(1 for y in lab if y != -100) for _, lab in sft),
            "heldout_prompts": len(heldout),
        },
    }
    if state.get("resumed"):
        manifest["resumed"] = state["resumed"]
    write_json(output_dir / "build.json", manifest)
    shutil.rmtree(staging)
    log.info("built the tiny pair in %.0fs: %s", seconds["total"], output_dir)
    return BuildReport(base_dir, instruct_dir, heldout_path, seconds, final)


def _unfinished(staging: Path, config: dict[str, Any]) -> dict[str, Any]:
    """The state of the unfinished build in ``staging``, or a new one.

    A build of the same config resumes after the stages it finished (with a notice); one of
    other settings, or a folder without a readable state, is discarded.
    """
    state = read_json(staging / "state.json")
    if state is not None and state.get("config") == config and state.get("stages"):
        done = ", ".join(state["stages"])
        log.warning(
            "resuming the unfinished build in %s: %s done (loaded, not trained again)",
            staging,
            done,
        )
        state["resumed"] = [*state.get("resumed", []), sorted(state["stages"])]
        return state
    if staging.exists():
        if state is not None and state.get("config") != config:
            log.warning("%s holds an unfinished build with other settings: discarded", staging)
        shutil.rmtree(staging)  # or one that finished no stage: nothing to keep
    state = {"config": config, "stages": {}}
    write_json(staging / "state.json", state)
    return state


def _finish_stage(
    staging: Path,
    state: dict[str, Any],
    stage: str,
    model: Any,
    tokenizer: Any,
    losses: list[float],
    seconds: dict[str, float],
) -> None:
    """Save a trained model into ``staging`` (beside, then renamed) and mark its stage done."""
    name = "tiny-base" if stage == "pretrain" else "tiny-instruct"
    tmp, final = staging / f"{name}.tmp", staging / name
    for path in (tmp, final):  # left by a run killed before its stage was marked done
        shutil.rmtree(path, ignore_errors=True)
    try:
        save_model(model, tokenizer, tmp)
    except Exception as err:  # safetensors reports a full disk as its own error
        if not no_space(err):
            raise
        shutil.rmtree(tmp, ignore_errors=True)
        kept = f" (the pair in {staging.parent} is unchanged)"
        raise out_of_space(tmp, err, kept) from None
    os.replace(tmp, final)
    state["stages"][stage] = {
        "final_loss": round(sum(losses[-20:]) / len(losses[-20:]), 4),
        "seconds": seconds[stage],
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    write_json(staging / "state.json", state)


def _move_pair(staging: Path, output_dir: Path) -> None:
    """Move both trained models from ``staging`` into ``output_dir`` (rerun: finish the move).

    A model still in ``staging`` replaces the one in ``output_dir``, which is moved aside into
    ``staging`` first (two renames on one filesystem); a model no longer in ``staging`` was
    moved already.
    """
    for name in PAIR:
        staged, final, old = staging / name, output_dir / name, staging / f"old-{name}"
        if not staged.is_dir():
            continue
        if final.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(final, old)
        os.replace(staged, final)
