"""Where ``codit eval ifeval`` finds IFEval's prompts: a local file, or the public dataset.

Without ``--input-data``, the prompts come from the public IFEval dataset on the Hugging Face
hub (``google/IFEval``, 541 prompts) through ``datasets``. The first run downloads it and writes
the prompts as IFEval's own ``input_data.jsonl`` into the ``datasets`` cache, so later runs,
offline ones included, read that file and need no network. An offline run with neither the
cached file nor ``--input-data`` fails with one sentence naming both ways.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from codit.errors import DataError
from codit.io.atomic import write_lines

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
