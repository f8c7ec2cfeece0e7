"""The prompts of a ``codit generate`` run, streamed twice: checked first, then handed out.

Pass 1 (``plan_inputs``), before any model loads, reads every row of the input (a local file,
a ``datasets`` folder or ``hf:ORG/NAME``) through ``codit.io.prompts.scan_prompts``, applies
the filters (``codit.io.filters``) and ``--limit``, counts what they dropped, and keeps a 64-bit
hash of each picked id (``codit.io.hashset``, 8 bytes a prompt); bad rows are reported
together, or kept for the errors file with ``--skip-invalid``. Pass 2 (``pending_prompts``)
reads the input again and yields the picked prompts not done yet, one at a time, as the engine
asks for them (the filters are not run again: ``--first-turn``'s cut is). The same input,
filters and limit pick the same prompts, so a rerun resumes exactly. No prompt text is kept
between the passes (measured in ``benchmarks/input_memory.py``).
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from codit.errors import ConfigError, DataError
from codit.generation.config import GenerateConfig
from codit.generation.samples import expand_samples
from codit.io.filters import PromptFilter, first_user_turn
from codit.io.hashset import HashSet, text_hash
from codit.io.invalid import Invalid, invalid_input
from codit.io.prompts import PromptRecord, scan_prompts
from codit.io.sources import describe, is_hub


@dataclass
class InputPlan:
    """What pass 1 found."""

    inputs: int = 0
    invalid: list[Invalid] = field(default_factory=list)
    filtered: dict[str, int] = field(default_factory=dict)
    picked: HashSet = field(default_factory=HashSet)
    already_done: int = 0

    @property
    def todo(self) -> int:
        return self.inputs - self.already_done

    def count_done(self, done_ids: Iterable[str]) -> int:
        """Set ``already_done``: how many picked prompts the output (or errors file) holds."""
        self.already_done = sum(text_hash(key) in self.picked for key in done_ids)
        return self.already_done


def _rows(config: GenerateConfig) -> Iterator[PromptRecord | Invalid]:
    return scan_prompts(str(config.input), config.prompt_field, config.id_field, config.source)


def plan_inputs(config: GenerateConfig) -> InputPlan:
    """Pass 1: check every row, pick the prompts to answer, count.

    Raises:
        DataError: bad rows (all named; unless ``--skip-invalid``), or no prompt to answer.
    """
    plan = InputPlan()
    keep = PromptFilter(config.filters)
    prompts = 0
    for item in _rows(config):
        if isinstance(item, Invalid):
            plan.invalid.append(item)
            continue
        if keep.keep(item.messages) is None:
            continue
        for sample in expand_samples([item], config.num_samples):
            plan.picked.add(text_hash(sample.id))
            plan.inputs += 1
        prompts += 1
        if config.limit is not None and prompts >= config.limit:
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
    """Pass 2: the picked prompts (each sample of them) not done yet, lazily, in input order."""
    for row in _rows(config):
        if isinstance(row, Invalid):
            continue
        for item in expand_samples([row], config.num_samples):
            if item.id in done_ids or text_hash(item.id) not in plan.picked:
                continue
            if config.filters.first_turn:
                item = replace(item, messages=first_user_turn(item.messages))
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
