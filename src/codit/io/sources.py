"""Prompt sets by name: ``--input hf:ORG/NAME`` read through ``datasets``, one row at a time.

``input_rows`` is the one entry to every input: a local file goes to ``codit.io.rows``, and
``hf:ORG/NAME`` (or ``hf:PATH``, a local dataset folder, which ``datasets`` reads the same way)
is opened with ``datasets.load_dataset`` and its rows yielded lazily, as the same ``Line``
objects (location, raw row); checking what a row holds is ``codit.io.prompts``' business. With
``--streaming`` nothing is downloaded up front and memory stays flat however large the set; without
it ``datasets`` downloads and caches the set once (memory-mapped Arrow files, also flat) so
reruns and the validation pass read the local copy. ``describe`` is what the manifest records:
the name, subset, split, the revision asked for and, when the hub can be reached, the commit it
resolved to.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codit.errors import DataError
from codit.io.jsonl import Line

log = logging.getLogger(__name__)

PREFIX = "hf:"


@dataclass(frozen=True)
class InputSource:
    """Which part of an ``hf:`` input to read. Fields become ``--flags``."""

    split: str = field(default="train", metadata={"help": "split of an hf: input"})
    subset: str | None = field(
        default=None, metadata={"help": "subset (config name) of an hf: input"}
    )
    revision: str | None = field(
        default=None, metadata={"help": "revision (branch, tag or commit) of an hf: input"}
    )
    streaming: bool = field(
        default=False,
        metadata={
            "help": "stream an hf: input instead of downloading it first (read twice: once to check, once to generate)"
        },
    )


def is_hub(spec: str | os.PathLike[str] | None) -> bool:
    """Whether an ``--input`` names a dataset through ``datasets`` (``hf:ORG/NAME``)."""
    return isinstance(spec, str) and spec.startswith(PREFIX)


def hub_name(spec: str) -> str:
    name = spec[len(PREFIX) :]
    if not name:
        raise DataError("--input hf: needs a dataset name, e.g. hf:lmsys/lmsys-chat-1m")
    return name


def _offline() -> bool:
    return any(
        os.environ.get(v, "").lower() in ("1", "true", "yes", "on")
        for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
    )


def resolved_revision(name: str, revision: str | None) -> str | None:
    """The commit the hub resolves ``revision`` to, or None offline or for a local folder."""
    if _offline() or os.path.isdir(name) or name.count("/") != 1:
        return None
    try:
        from huggingface_hub import HfApi

        return HfApi().dataset_info(name, revision=revision).sha
    except Exception as err:  # the commit is a nice-to-have for the manifest, never a blocker
        log.info("could not resolve the revision of %s: %s", name, err)
        return None


def describe(spec: str, source: InputSource) -> dict[str, Any]:
    """The manifest's ``source`` entry for an ``hf:`` input."""
    name = hub_name(spec)
    return {
        "input": spec,
        "dataset": name,
        "subset": source.subset,
        "split": source.split,
        "revision": source.revision,
        "resolved_revision": resolved_revision(name, source.revision),
        "streaming": source.streaming,
    }


def open_dataset(spec: str, source: InputSource) -> Any:
    """The split ``source`` names of the dataset ``spec`` (an ``IterableDataset`` when streaming)."""
    import datasets

    name = hub_name(spec)
    try:
        data = datasets.load_dataset(
            name,
            source.subset,
            split=source.split,
            revision=source.revision,
            streaming=source.streaming,
        )
    except ValueError as err:
        if "split" in str(err).lower():
            raise DataError(
                f"{spec} has no split {source.split!r} ({err}); choose one with --split"
            ) from None
        raise DataError(f"{spec} could not be loaded through datasets: {err}") from None
    except Exception as err:  # not found, offline, gated, bad subset: one sentence
        raise DataError(
            f"{spec} could not be loaded through datasets ({type(err).__name__}: {err}); check the "
            "name, --subset and --revision, and that you are online or have it cached"
        ) from None
    return data


def hub_rows(spec: str, source: InputSource) -> Iterator[Line]:
    """Each row of the split ``source`` names, lazily, as a ``Line`` (``hf:NAME (split), record N``)."""
    where = f"{spec} ({source.split}{', ' + source.subset if source.subset else ''})"
    for n, row in enumerate(open_dataset(spec, source), 1):
        yield Line(n, f"{where}, record {n}", dict(row))


def input_rows(path: str | Path, source: InputSource | None = None) -> Iterator[Line]:
    """The rows of any ``--input``: a local file or folder, or ``hf:NAME`` through ``datasets``."""
    from codit.io.rows import iter_rows

    if is_hub(path):
        yield from hub_rows(str(path), source or InputSource())
        return
    path = Path(path)
    if not path.exists():
        raise DataError(f"input {path} does not exist")
    yield from iter_rows(path)
