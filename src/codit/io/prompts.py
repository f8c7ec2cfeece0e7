"""Reading prompt datasets: JSONL, JSON, CSV, Parquet or a saved ``datasets`` directory.

Each row becomes a ``PromptRecord``: a stable id and the conversation to answer. The prompt is
a text field (one user turn) or a ``messages`` list (OpenAI/TRL roles or ShareGPT's
``from``/``value``), cut after its last user turn. Ids come from the id field, or from a hash
of the conversation so that the same prompt always gets the same id. Every problem is a
``DataError`` naming the file and the line (or row) to fix; this module never loads a model.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codit.errors import DataError

AUTO_PROMPT_FIELDS = ("messages", "prompt", "instruction", "question", "input", "conversations")
SUFFIXES = (".jsonl", ".json", ".csv", ".parquet")
SHAREGPT_ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "system": "system",
    "model": "assistant",
    "bot": "assistant",
}


@dataclass(frozen=True)
class PromptRecord:
    """One prompt to answer.

    Attributes:
        id: stable id (from the id field, else ``sha256`` of the conversation, 16 hex chars).
        messages: the conversation up to and including its last user turn.
        line: 1-based line (JSONL) or row number, for messages to the user.
    """

    id: str
    messages: list[dict[str, str]]
    line: int


def prompt_hash(messages: list[dict[str, str]]) -> str:
    """The id of a prompt that has none: a hash of its canonical JSON."""
    canonical = json.dumps(messages, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line or row number, row) pairs from any supported format."""
    if path.is_dir():
        yield from _dataset_rows(path)
        return
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        with path.open(encoding="utf-8") as handle:
            for n, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as err:
                    raise DataError(
                        f"{path}, line {n}: not valid JSON ({err.msg} at column {err.colno})"
                    ) from None
                if not isinstance(row, dict):
                    raise DataError(
                        f"{path}, line {n}: expected a JSON object, got {type(row).__name__}"
                    )
                yield n, row
    elif suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise DataError(f"{path}: not valid JSON ({err.msg} at line {err.lineno})") from None
        if (
            isinstance(data, dict)
            and len(data) == 1
            and isinstance(next(iter(data.values())), list)
        ):
            data = next(iter(data.values()))
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise DataError(f"{path}: expected a JSON list of objects")
        yield from enumerate(data, 1)
    elif suffix == ".csv":
        with path.open(encoding="utf-8", newline="") as handle:
            for n, row in enumerate(csv.DictReader(handle), 2):  # line 1 is the header
                yield n, dict(row)
    elif suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            parquet = pq.ParquetFile(path)
        except Exception as err:
            raise DataError(f"{path}: not a readable Parquet file ({err})") from None
        n = 0
        for batch in parquet.iter_batches(batch_size=1024):
            for row in batch.to_pylist():
                n += 1
                yield n, row
    else:
        raise DataError(
            f"{path}: unknown input format {suffix!r}; use .jsonl, .json, .csv, .parquet or a datasets directory"
        )


def _dataset_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    from datasets import DatasetDict, load_from_disk

    try:
        data = load_from_disk(str(path))
    except Exception as err:
        raise DataError(
            f"{path} is a directory but not a saved `datasets` dataset ({err})"
        ) from None
    if isinstance(data, DatasetDict):
        if "train" in data:
            data = data["train"]
        elif len(data) == 1:
            data = next(iter(data.values()))
        else:
            raise DataError(
                f"{path} holds several splits ({', '.join(data)}) and none is 'train'; save one split"
            )
    yield from enumerate(data, 1)


def to_messages(value: Any, where: str, field: str) -> list[dict[str, str]]:
    """A text or a message list -> a conversation ending with its last user turn."""
    if isinstance(value, str):
        if not value.strip():
            raise DataError(f"{where}: the prompt in field {field!r} is empty")
        return [{"role": "user", "content": value}]
    if not isinstance(value, list) or not value:
        raise DataError(f"{where}: field {field!r} must be a text or a non-empty list of messages")
    messages = []
    for m in value:
        if not isinstance(m, dict):
            raise DataError(
                f"{where}: every message in {field!r} must be an object with role and content"
            )
        role = m.get("role", m.get("from"))
        content = m.get("content", m.get("value"))
        role = SHAREGPT_ROLES.get(str(role).lower(), role) if role is not None else None
        if role not in ("system", "user", "assistant", "tool") or not isinstance(content, str):
            raise DataError(f"{where}: a message in {field!r} lacks a known role or a text content")
        messages.append({"role": role, "content": content})
    last_user = max((i for i, m in enumerate(messages) if m["role"] == "user"), default=-1)
    if last_user < 0:
        raise DataError(f"{where}: the conversation in {field!r} has no user turn")
    if not messages[last_user]["content"].strip():
        raise DataError(f"{where}: the last user turn in {field!r} is empty")
    return messages[: last_user + 1]


def _where(path: str | Path, n: int) -> str:
    kind = "line" if Path(path).suffix.lower() in (".jsonl", ".csv") else "record"
    return f"{path}, {kind} {n}"


def _source_rows(path: str | Path, source: Any = None) -> Iterator[tuple[int, str, dict[str, Any]]]:
    """(number, where, row) of a local input, or of ``hf:NAME`` read through ``datasets``."""
    from codit.io.sources import InputSource, hub_rows, is_hub

    if is_hub(path):
        yield from hub_rows(str(path), source or InputSource())
        return
    path = Path(path)
    if not path.exists():
        raise DataError(f"input {path} does not exist")
    for n, row in _rows(path):
        yield n, _where(path, n), row


def scan_prompts(
    path: str | Path,
    prompt_field: str | None = None,
    id_field: str | None = None,
    source: Any = None,
) -> Iterator[PromptRecord]:
    """Each row of the input checked, lazily (``source``: the ``InputSource`` of an hf: input)."""
    for n, where, row in _source_rows(path, source):
        field = prompt_field or next((f for f in AUTO_PROMPT_FIELDS if f in row), None)
        if field is None or field not in row:
            wanted = f"field {prompt_field!r}" if prompt_field else "a prompt field"
            raise DataError(
                f"{where} has no {wanted}; its fields are {sorted(row)}; choose one with --prompt-field"
            )
        messages = to_messages(row[field], where, field)
        key_field = id_field or ("id" if "id" in row else None)
        if key_field is not None:
            if row.get(key_field) in (None, ""):
                raise DataError(
                    f"{where} has no id in field {key_field!r}; its fields are {sorted(row)}"
                )
            key = str(row[key_field])
        else:
            key = prompt_hash(messages)
        yield PromptRecord(key, messages, n)


def read_prompts(
    path: str | Path,
    prompt_field: str | None = None,
    id_field: str | None = None,
    limit: int | None = None,
) -> list[PromptRecord]:
    """Read and validate every prompt of a dataset (before any model loads).

    Args:
        path: the input file or ``datasets`` directory.
        prompt_field: field with the text or the messages; None tries ``messages``, ``prompt``,
            ``instruction``, ``question``, ``input``, ``conversations`` in that order.
        id_field: field with the record id; None uses ``id`` when present, else a hash.
        limit: read only the first ``limit`` prompts.
    """
    records: list[PromptRecord] = []
    for record in scan_prompts(path, prompt_field, id_field):
        records.append(record)
        if limit is not None and len(records) >= limit:
            break
    if not records:
        raise DataError(f"input {path} holds no prompts")
    return records
