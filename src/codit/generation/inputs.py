"""The prompts of a ``codit generate`` run, streamed twice: checked first, then handed out.

Pass 1 (``plan_inputs``), before any model loads, reads every row of the input (a local file,
a ``datasets`` folder or ``hf:ORG/NAME``) through ``codit.io.prompts.scan_prompts``, applies
the filters (``codit.io.filters``) and ``--limit``, counts what they dropped, and spools the
row number and id of each picked prompt to a temporary file (``Picked``); bad rows are reported
together, or kept for the errors file with ``--skip-invalid``. Pass 2 (``pending_prompts``)
reads the input again and yields the picked rows' prompts not done yet, one at a time, as the
engine asks for them (the filters are not run again: ``--first-turn``'s cut is). The same
input, filters and limit pick the same prompts, so a rerun resumes exactly. Nothing per prompt
is kept in memory between or during the passes: the ids seen, the dedup texts and the ids done
are exact sets on disk (``codit.io.keyset``; measured in ``benchmarks/input_memory.py``).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Container, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from codit.errors import ConfigError, DataError
from codit.generation.config import GenerateConfig
from codit.generation.samples import sample_id
from codit.io.filters import PromptFilter, first_user_turn
from codit.io.invalid import Invalid, invalid_input
from codit.io.prompts import PromptRecord, check_prompt, scan_prompts
from codit.io.sources import describe, input_rows, is_hub


class Picked:
    """The (row number, id) of each picked prompt, in input order, in a temporary file.

    The file is unlinked as soon as it is created, so it goes with the process however it ends;
    every iteration reads it from the start with its own offset.
    """

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile()  # noqa: SIM115 (lives as long as the plan)
        self.rows = 0

    def add(self, row: int, key: str) -> None:
        self._file.write(json.dumps([row, key], ensure_ascii=False).encode() + b"\n")
        self.rows += 1

    def __iter__(self) -> Iterator[tuple[int, str]]:
        self._file.flush()
        fd, offset, tail = self._file.fileno(), 0, b""
        while chunk := os.pread(fd, 1 << 16, offset):
            offset += len(chunk)
            *lines, tail = (tail + chunk).split(b"\n")
            for line in lines:
                row, key = json.loads(line)
                yield row, key


@dataclass
class InputPlan:
    """What pass 1 found."""

    inputs: int = 0
    invalid: list[Invalid] = field(default_factory=list)
    filtered: dict[str, int] = field(default_factory=dict)
    picked: Picked = field(default_factory=Picked)
    num_samples: int = 1
    already_done: int = 0

    @property
    def todo(self) -> int:
        return self.inputs - self.already_done

    def ids(self, key: str) -> list[str]:
        """The record ids of a picked prompt: its own, or one per sample."""
        n = self.num_samples
        return [key] if n == 1 else [sample_id(key, k) for k in range(n)]

    def count_done(self, done_ids: Container[str]) -> int:
        """Set ``already_done``: how many picked records the output (or errors file) holds."""
        self.already_done = sum(
            record in done_ids for _, key in self.picked for record in self.ids(key)
        )
        return self.already_done


def _rows(config: GenerateConfig) -> Iterator[PromptRecord | Invalid]:
    return scan_prompts(str(config.input), config.prompt_field, config.id_field, config.source)


def plan_inputs(config: GenerateConfig) -> InputPlan:
    """Pass 1: check every row, pick the prompts to answer, count.

    Raises:
        DataError: bad rows (all named; unless ``--skip-invalid``), or no prompt to answer.
    """
    plan = InputPlan(num_samples=config.num_samples)
    keep = PromptFilter(config.filters)
    for item in _rows(config):
        if isinstance(item, Invalid):
            plan.invalid.append(item)
            continue
        if keep.keep(item.messages) is None:
            continue
        plan.picked.add(item.line, item.id)
        plan.inputs += config.num_samples
        if config.limit is not None and plan.picked.rows >= config.limit:
            break  # the rows after the limit are not read (as without filters)
    plan.filtered = dict(keep.dropped)
    if plan.invalid and not config.output_options.skip_invalid:
        raise invalid_input(config.input, plan.invalid, skippable=True)
    if not plan.inputs:
        if plan.filtered:
            dropped = ", ".join(f"{n} by --{k.replace('_', '-')}" for k, n in plan.filtered.items())
            raise DataError(f"no prompt of {config.input} passes the filters ({dropped})")
        raise DataError(f"input {config.input} holds no {'valid ' if plan.invalid else ''}prompts")
    return plan


def pending_prompts(
    config: GenerateConfig, plan: InputPlan, done_ids: Container[str]
) -> Iterator[PromptRecord]:
    """Pass 2: the picked prompts (each sample of them) not done yet, lazily, in input order.

    Only the rows pass 1 picked are parsed again (by row number, so a repeated id's row is not
    taken twice); a picked row whose id changed means the input changed between the passes.

    Raises:
        DataError: the input no longer holds the rows pass 1 picked.
    """
    picks = iter(plan.picked)
    want = next(picks, None)
    for line in input_rows(str(config.input), config.source):
        if want is None:
            return  # the rows after the last picked one are not read
        if line.number != want[0] or line.value is None:
            continue
        row, key = want
        want = next(picks, None)
        try:
            item = check_prompt(
                line.value, line.number, line.where, config.prompt_field, config.id_field
            )
        except Exception:
            item = None
        if item is None or item.id != key:
            raise DataError(
                f"{line.where} is not the prompt {key!r} that the first pass read there: "
                f"{config.input} changed during the run; rerun to resume from its new contents"
            )
        messages = first_user_turn(item.messages) if config.filters.first_turn else item.messages
        for record in plan.ids(key):
            if record not in done_ids:
                yield PromptRecord(record, messages, item.line, item.where)
    if want is not None:
        raise DataError(
            f"{config.input} ended before row {want[0]} (prompt {want[1]!r}), which the first "
            "pass read: it changed during the run; rerun to resume from its new contents"
        )


def source_entry(config: GenerateConfig) -> dict[str, Any]:
    """The manifest's ``source``: where the prompts come from and how they were picked."""
    entry: dict[str, Any] = (
        describe(str(config.input), config.source)
        if is_hub(config.input)
        else {"input": str(config.input)}
    )
    entry["filters"] = config.filters.to_manifest()
    return entry


def check_same_revision(previous: dict[str, Any] | None, entry: dict[str, Any]) -> None:
    """Refuse to resume from a hub dataset whose branch moved to another commit since."""
    before = ((previous or {}).get("source") or {}).get("resolved_revision")
    now = entry.get("resolved_revision")
    if before and now and before != now:
        raise ConfigError(
            f"{entry['input']} is now at commit {now}, not {before} as when this output was "
            f"started; pass --revision {before} to resume with the same prompts"
        )


class InFlight:
    """``(id, conversation)`` pairs for the engine that remember each prompt until it is back.

    Iterating pulls prompts one by one; ``pop(id)`` hands back the prompt and the conversation
    sent (system turn included) when its completion arrives, so only the rows in flight are held.
    """

    def __init__(self, prompts: Iterable[PromptRecord], system_prompt: str | None):
        self._prompts = prompts
        self._system = system_prompt
        self._open: dict[str, tuple[PromptRecord, list[dict[str, str]]]] = {}

    def __iter__(self) -> Iterator[tuple[str, list[dict[str, str]]]]:
        from codit.models.chat import with_system

        for prompt in self._prompts:
            conversation = with_system(prompt.messages, self._system)
            self._open[prompt.id] = (prompt, conversation)
            yield prompt.id, conversation

    def pop(self, key: str) -> tuple[PromptRecord, list[dict[str, str]]]:
        return self._open.pop(key)
