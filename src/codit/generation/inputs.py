"""The prompts of a ``codit generate`` run, streamed twice: checked first, then handed out.

Pass 1 (``plan_inputs``), before any model loads, reads every row of the input (a local file,
a ``datasets`` folder or ``hf:ORG/NAME``) through ``codit.io.prompts.scan_prompts``, applies
the filters (``codit.io.filters``) and ``--limit``, and counts the prompts picked, those already
done and those dropped; bad rows are reported together, or kept for the errors file with
``--skip-invalid``. Pass 2 (``pending_prompts``) reads the input again the same way and yields
the prompts still to do, one at a time, as the engine asks for them. The same input, filters and
limit pick the same prompts in the same order, so a rerun resumes exactly. No prompt text is
kept between the passes, only ids, so memory does not grow with the input's size beyond the id
sets (measured in ``benchmarks/input_memory.py``).
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from codit.errors import ConfigError, DataError
from codit.generation.config import GenerateConfig
from codit.io.filters import PromptFilter
from codit.io.prompts import PromptRecord, scan_prompts
from codit.io.sources import describe, is_hub


@dataclass
class InputPlan:
    """What pass 1 found."""

    inputs: int = 0
    already_done: int = 0
    filtered: dict[str, int] = field(default_factory=dict)

    @property
    def todo(self) -> int:
        return self.inputs - self.already_done


def _picked(config: GenerateConfig, keep: PromptFilter) -> Iterator[PromptRecord]:
    """The input's checked rows, filtered and cut at ``--limit``."""
    n = 0
    for item in scan_prompts(
        str(config.input), config.prompt_field, config.id_field, config.source
    ):
        messages = keep.keep(item.messages)
        if messages is None:
            continue
        yield item if messages is item.messages else replace(item, messages=messages)
        n += 1
        if config.limit is not None and n >= config.limit:
            return


def plan_inputs(config: GenerateConfig, done_ids: Container[str]) -> InputPlan:
    """Pass 1: check every row and count what a run will do.

    Raises:
        DataError: bad rows (all named; unless ``--skip-invalid``), or no prompt to answer.
    """
    plan = InputPlan()
    keep = PromptFilter(config.filters)
    for item in _picked(config, keep):
        plan.inputs += 1
        plan.already_done += item.id in done_ids
    plan.filtered = dict(keep.dropped)
    if not plan.inputs:
        if plan.filtered:
            dropped = ", ".join(f"{n} by --{k.replace('_', '-')}" for k, n in plan.filtered.items())
            raise DataError(f"no prompt of {config.input} passes the filters ({dropped})")
        raise DataError(f"input {config.input} holds no prompts")
    return plan


def pending_prompts(config: GenerateConfig, done_ids: Container[str]) -> Iterator[PromptRecord]:
    """Pass 2: the prompts still to do, lazily, in input order."""
    for item in _picked(config, PromptFilter(config.filters)):
        if item.id not in done_ids:
            yield item


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
