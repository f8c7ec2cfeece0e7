"""Reading prompt datasets: JSONL, JSON, CSV, Parquet or a saved ``datasets`` directory.

Each row becomes a ``PromptRecord``: a stable id and the conversation to answer. The prompt is
a text field (one user turn) or a ``messages`` list (OpenAI/TRL roles or ShareGPT's
``from``/``value``), cut after its last user turn. Ids come from the id field, or from a hash
of the conversation so that the same prompt always gets the same id; an id appears once per
input (a later row with the same id is invalid). Reading is a lazy stream of rows
(``codit.io.rows``) checked one by one (``check_prompt``) in ``scan_prompts``, which keeps only
the ids seen; ``read_prompt_set`` collects them and names every bad row (the first 20 and a
count) in one ``DataError``, or with ``skip_invalid`` returns them for the errors file. This
module never loads a model.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codit.errors import DataError
from codit.io.invalid import RAW_CHARS, Invalid, invalid_input
from codit.io.keyset import KeyMap
from codit.io.rows import SUFFIXES

__all__ = ["SUFFIXES", "PromptRecord", "PromptSet", "read_prompt_set", "read_prompts"]

AUTO_PROMPT_FIELDS = ("messages", "prompt", "instruction", "question", "input", "conversations")
ROLES = ("system", "user", "assistant", "tool")
SHAREGPT_ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "system": "system",
    "model": "assistant",
    "bot": "assistant",
    "tool": "tool",
}


@dataclass(frozen=True)
class PromptRecord:
    """One prompt to answer.

    Attributes:
        id: stable id (from the id field, else ``sha256`` of the conversation, 16 hex chars).
        messages: the conversation up to and including its last user turn.
        line: 1-based line (JSONL, CSV) or record number, for messages to the user.
        where: ``file, line N``: what to show the user about this prompt.
    """

    id: str
    messages: list[dict[str, str]]
    line: int
    where: str = ""


@dataclass(frozen=True)
class PromptSet:
    """The valid prompts of an input and its bad rows (empty unless ``skip_invalid``)."""

    records: list[PromptRecord]
    invalid: list[Invalid] = field(default_factory=list)


class _Bad(Exception):
    """A row's problem, as a phrase."""


def prompt_hash(messages: list[dict[str, str]]) -> str:
    """The id of a prompt that has none: a hash of its canonical JSON."""
    canonical = json.dumps(messages, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _message(m: Any, i: int, field_name: str) -> dict[str, str]:
    if not isinstance(m, dict):
        raise _Bad(
            f"message {i} in {field_name!r} is a {type(m).__name__}, not an object with role and content"
        )
    role = m.get("role", m.get("from"))
    content = m.get("content", m.get("value"))
    known = SHAREGPT_ROLES.get(str(role).lower()) if isinstance(role, str) else None
    if known is None:
        raise _Bad(
            f"message {i} in {field_name!r} has role {role!r}, not one of {', '.join(ROLES)} "
            "(or ShareGPT's human, gpt)"
        )
    if not isinstance(content, str):
        raise _Bad(
            f"message {i} in {field_name!r} has no text content (got {type(content).__name__})"
        )
    return {"role": known, "content": content}


def to_messages(value: Any, field_name: str) -> list[dict[str, str]]:
    """A text or a message list -> a conversation ending with its last user turn.

    Raises:
        _Bad: what is wrong with it.
    """
    if isinstance(value, str):
        if not value.strip():
            raise _Bad(f"the prompt in field {field_name!r} is empty")
        return [{"role": "user", "content": value}]
    if not isinstance(value, list) or not value:
        raise _Bad(
            f"field {field_name!r} must be a text or a non-empty list of messages, "
            f"not {type(value).__name__ if value != [] else 'an empty list'}"
        )
    messages = [_message(m, i, field_name) for i, m in enumerate(value, 1)]
    last_user = max((i for i, m in enumerate(messages) if m["role"] == "user"), default=-1)
    if last_user < 0:
        raise _Bad(f"the conversation in {field_name!r} has no user turn")
    if not messages[last_user]["content"].strip():
        raise _Bad(f"the last user turn in {field_name!r} is empty")
    return messages[: last_user + 1]


def _record_id(row: dict[str, Any], id_field: str | None, messages: list[dict[str, str]]) -> str:
    key_field = id_field or ("id" if "id" in row else None)
    if key_field is None:
        return prompt_hash(messages)
    value = row.get(key_field)
    if value is None or value == "":
        raise _Bad(f"no id in field {key_field!r}; its fields are {sorted(row)}")
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _Bad(
            f"the id in field {key_field!r} must be a string or an integer, not {type(value).__name__}"
        )
    return str(value)


def check_prompt(
    row: dict[str, Any], n: int, where: str, prompt_field: str | None, id_field: str | None
) -> PromptRecord:
    """One row -> its ``PromptRecord``.

    Raises:
        _Bad: what is wrong with the row.
    """
    name = prompt_field or next((f for f in AUTO_PROMPT_FIELDS if f in row), None)
    if name is None or name not in row:
        wanted = f"field {prompt_field!r}" if prompt_field else "prompt field"
        raise _Bad(f"no {wanted}; its fields are {sorted(row)}; choose one with --prompt-field")
    messages = to_messages(row[name], name)
    return PromptRecord(_record_id(row, id_field, messages), messages, n, where)


def scan_prompts(
    path: str | Path,
    prompt_field: str | None = None,
    id_field: str | None = None,
    source: Any = None,
) -> Iterator[PromptRecord | Invalid]:
    """Each row of ``path`` checked, lazily: a ``PromptRecord`` or the ``Invalid`` it is.

    ``path`` may be ``hf:NAME``, read through ``datasets`` as ``source`` (an
    ``InputSource``) says. The ids seen and their line numbers (to find a repeated id) are kept
    on disk (``codit.io.keyset``), so this streams any input in flat memory.
    """
    from codit.io.sources import input_rows

    seen = KeyMap()
    for line in input_rows(path, source):
        if line.invalid is not None or line.value is None:
            yield line.invalid or Invalid(line.where, "unreadable")
            continue
        try:
            record = check_prompt(line.value, line.number, line.where, prompt_field, id_field)
        except _Bad as bad:
            yield Invalid(line.where, str(bad), _raw(line.value))
            continue
        first = seen.get(record.id)
        if first is not None:
            kind = line.where.rsplit(", ", 1)[-1].split(" ")[0]  # "line" or "record"
            yield Invalid(
                line.where,
                f"id {record.id!r} already appears on {kind} {first}; ids must be unique",
                _raw(line.value),
            )
            continue
        seen.put(record.id, line.number)
        yield record


def _raw(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)[:RAW_CHARS]


def read_prompt_set(
    path: str | Path,
    prompt_field: str | None = None,
    id_field: str | None = None,
    limit: int | None = None,
    skip_invalid: bool = False,
) -> PromptSet:
    """Read and check every prompt of a dataset (before any model loads).

    Args:
        path: the input file or ``datasets`` directory.
        prompt_field: field with the text or the messages; None tries ``messages``, ``prompt``,
            ``instruction``, ``question``, ``input``, ``conversations`` in that order.
        id_field: field with the record id; None uses ``id`` when present, else a hash.
        limit: read only the first ``limit`` valid prompts.
        skip_invalid: return bad rows in ``invalid`` instead of raising.

    Raises:
        DataError: the input is missing or unreadable, holds no valid prompt, or (without
            ``skip_invalid``) has bad rows: all of them are named.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"input {path} does not exist")
    records: list[PromptRecord] = []
    invalid: list[Invalid] = []
    for item in scan_prompts(path, prompt_field, id_field):
        if isinstance(item, Invalid):
            invalid.append(item)
            continue
        records.append(item)
        if limit is not None and len(records) >= limit:
            break
    if invalid and not skip_invalid:
        raise invalid_input(path, invalid, skippable=True)
    if not records:
        raise DataError(f"input {path} holds no {'valid ' if invalid else ''}prompts")
    return PromptSet(records, invalid)


def read_prompts(
    path: str | Path,
    prompt_field: str | None = None,
    id_field: str | None = None,
    limit: int | None = None,
) -> list[PromptRecord]:
    """The prompts of a dataset; any bad row is a ``DataError`` (see ``read_prompt_set``)."""
    return read_prompt_set(path, prompt_field, id_field, limit).records
