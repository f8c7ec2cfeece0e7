"""Several samples per prompt, for a Best-of-N baseline (``codit generate --num-samples N``).

Sample ``k`` of prompt ``ID`` becomes its own record with the id ``ID#s<k>`` (k = 0 .. N-1). The
engine seeds each record's sampling stream from the run seed and the record id, so the N samples
of a prompt draw from N distinct streams, and each one is the same on every rerun with the same
seed (a resumed run regenerates exactly what it lost). Every sample keeps its prompt's id and its
index in ``meta`` (``prompt_id``, ``sample``), which is what ``codit select --best`` groups by.

With N = 1 nothing changes: ids and records are exactly those of a plain run. Pure functions.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from codit.io.prompts import PromptRecord

_SAMPLE_ID = re.compile(r"^(?P<prompt>.+)#s(?P<k>\d+)$")


def sample_id(prompt_id: str, k: int) -> str:
    """The record id of sample ``k`` of a prompt."""
    return f"{prompt_id}#s{k}"


def expand_samples(prompts: list[PromptRecord], n: int) -> list[PromptRecord]:
    """Each prompt ``n`` times, sample by sample (``ID#s0``, ``ID#s1``, ...); unchanged for n = 1."""
    if n == 1:
        return prompts
    return [dataclasses.replace(p, id=sample_id(p.id, k)) for p in prompts for k in range(n)]


def sample_meta(record_id: str, n: int) -> dict[str, Any]:
    """What a record's ``meta`` says about its sample: its prompt's id and its index (n > 1)."""
    if n == 1:
        return {}
    match = _SAMPLE_ID.match(record_id)
    if match is None:  # every id of a run with n > 1 comes from sample_id
        raise ValueError(f"{record_id!r} is not a sample id")
    return {"prompt_id": match["prompt"], "sample": int(match["k"]), "num_samples": n}


def sample_of(record: dict[str, Any]) -> tuple[str, int | None]:
    """(prompt id, sample index) of a generated record; a record that is no sample is the only
    candidate of its own id (index None)."""
    meta = record.get("meta") if isinstance(record.get("meta"), dict) else {}
    if meta and "prompt_id" in meta and isinstance(meta.get("sample"), int):
        return str(meta["prompt_id"]), int(meta["sample"])
    return str(record.get("id")), None
