"""Where ``codit eval ifeval`` finds IFEval's prompts (a local file, or the public dataset), and
reading them: ``load_prompts`` checks every row and names each bad one.

Without ``--input-data``, the prompts come from the public IFEval dataset on the Hugging Face
hub (``google/IFEval``, 541 prompts) through ``datasets``. The first run downloads it and writes
the prompts as IFEval's own ``input_data.jsonl`` into the ``datasets`` cache, so later runs,
offline ones included, read that file and need no network. An offline run with neither the
cached file nor ``--input-data`` fails with one sentence naming both ways.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codit.errors import DataError
from codit.evaluation.checks import instruction_arguments
from codit.io.atomic import write_lines
from codit.io.invalid import Invalid, invalid_input
from codit.io.jsonl import iter_lines

log = logging.getLogger(__name__)

HUB_DATASET = "google/IFEval"
FIELDS = ("key", "prompt", "instruction_id_list", "kwargs")


def cached_path() -> Path:
    """Where the converted prompts live: ``<datasets cache>/codit-ifeval/input_data.jsonl``."""
    import datasets

    return Path(datasets.config.HF_DATASETS_CACHE) / "codit-ifeval" / "input_data.jsonl"


def resolve_input_data(input_data: str | None) -> Path:
    """The IFEval prompts file to read: ``input_data`` when given, else the cached hub copy.

    Raises:
        DataError: ``input_data`` is not given and the dataset can be neither read from the
            cache nor downloaded.
    """
    if input_data:
        return Path(input_data)
    path = cached_path()
    if path.is_file():
        return path
    try:
        import datasets

        rows = datasets.load_dataset(HUB_DATASET, split="train")
    except Exception as err:  # offline, no network, hub errors: all mean the same to the user
        log.debug("loading %s failed: %r", HUB_DATASET, err)
        offline = os.environ.get("HF_DATASETS_OFFLINE") or os.environ.get("HF_HUB_OFFLINE")
        why = (
            "this run is offline"
            if offline
            else f"it could not be downloaded ({type(err).__name__})"
        )
        raise DataError(
            f"no IFEval prompts: pass --input-data FILE (a local IFEval input_data.jsonl), or run "
            f"once with network access so that {HUB_DATASET} is downloaded and cached "
            f"({why} and it is not in the cache at {path.parent})"
        ) from None
    write_lines(path, [{k: row[k] for k in FIELDS} for row in rows])
    log.info("cached %d IFEval prompts from %s at %s", len(rows), HUB_DATASET, path)
    return path


@dataclass(frozen=True)
class IFEvalPrompt:
    """One IFEval prompt with its instructions and their arguments (None values dropped)."""

    key: int | str
    prompt: str
    instruction_id_list: list[str]
    kwargs: list[dict[str, Any]]


def load_prompts(path: str | Path) -> list[IFEvalPrompt]:
    """Read and validate IFEval prompts (``key``, ``prompt``, ``instruction_id_list``, ``kwargs``).

    Raises:
        DataError: a missing file, or bad records: every one of them is named.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"IFEval input {path} does not exist")
    prompts: list[IFEvalPrompt] = []
    bad: list[Invalid] = []
    seen: set[str] = set()
    for line in iter_lines(path):
        if line.invalid is not None or line.value is None:
            bad.append(line.invalid or Invalid(line.where, "unreadable"))
            continue
        try:
            prompt = _ifeval_prompt(line.value)
        except DataError as err:
            bad.append(Invalid(line.where, str(err)))
            continue
        if str(prompt.key) in seen:
            bad.append(
                Invalid(line.where, f"key {prompt.key!r} appears twice; keys must be unique")
            )
            continue
        seen.add(str(prompt.key))
        prompts.append(prompt)
    if bad:
        raise invalid_input(path, bad)
    if not prompts:
        raise DataError(f"IFEval input {path} holds no prompts")
    return prompts


def _ifeval_prompt(row: dict[str, Any]) -> IFEvalPrompt:
    missing = [f for f in ("key", "prompt", "instruction_id_list", "kwargs") if f not in row]
    if missing:
        raise DataError(
            f"lacks {missing}; IFEval prompts need key, prompt, instruction_id_list, kwargs"
        )
    key, prompt, ids, kwargs = row["key"], row["prompt"], row["instruction_id_list"], row["kwargs"]
    if isinstance(key, bool) or not isinstance(key, int | str):
        raise DataError(f"'key' must be an integer or a string, not {type(key).__name__}")
    if not isinstance(prompt, str) or not prompt.strip():
        raise DataError("'prompt' must be a non-empty text")
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise DataError("'instruction_id_list' must be a list of instruction ids")
    if not isinstance(kwargs, list) or not all(isinstance(k, dict) for k in kwargs):
        raise DataError("'kwargs' must be a list of objects")
    if len(ids) != len(kwargs):
        raise DataError(f"has {len(ids)} instructions but {len(kwargs)} kwargs")
    args = [instruction_arguments(i, k, prompt) for i, k in zip(ids, kwargs, strict=True)]
    return IFEvalPrompt(key, prompt, list(ids), args)
