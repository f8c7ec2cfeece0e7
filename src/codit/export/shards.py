"""Writing a records file as the shards of a ``datasets``-loadable folder.

``write_shards`` reads a codit JSONL output twice, never holding more than one shard in memory:
the first pass counts the records, refuses duplicate ids and infers one Arrow schema for all of
them (a ``meta`` key present in some records only becomes a nullable column, an int column that
also holds floats becomes float), the second writes ``data/train-0000i-of-0000n.<ext>`` with that
schema, so every shard has the same columns and ``datasets.load_dataset(folder)`` reads them as
one split. This module knows nothing about cards or the hub.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from codit.errors import DataError
from codit.io.atomic import replacing
from codit.io.jsonl import iter_lines

FORMATS = ("parquet", "jsonl")
FIRST_COLUMNS = ("id", "messages", "meta")
SPLIT = "train"


@dataclass(frozen=True)
class ShardSummary:
    """What ``write_shards`` wrote, for the card and the CLI."""

    records: int
    schema: Any
    finish_reasons: dict[str, int] = field(default_factory=dict)
    completion_tokens: int = 0
    shards: list[Path] = field(default_factory=list)
    num_bytes: int = 0


def iter_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each record, lazily; a bad line is a ``DataError`` naming it."""
    for line in iter_lines(path):
        if line.invalid is not None:
            raise DataError(f"{line.invalid}; fix or remove that line")
        if line.value is not None:
            yield line.number, line.value


def _chunks(path: Path, size: int) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    for _, row in iter_jsonl(path):
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _ordered(schema: Any) -> Any:
    import pyarrow as pa

    names = [n for n in FIRST_COLUMNS if n in schema.names]
    names += sorted(n for n in schema.names if n not in FIRST_COLUMNS)
    return pa.schema([schema.field(n) for n in names])


def scan(path: Path, shard_size: int) -> ShardSummary:
    """First pass: the unified Arrow schema and the counts, checking ids are unique."""
    import pyarrow as pa

    seen: dict[str, int] = {}
    reasons: Counter[str] = Counter()
    tokens = 0
    schemas = []
    for n, row in iter_jsonl(path):
        key = row.get("id")
        if key is None:
            raise DataError(f"{path}, line {n}: the record has no 'id'")
        if str(key) in seen:
            raise DataError(
                f"{path}, line {n}: id {key!r} is also on line {seen[str(key)]}; "
                "a dataset holds each id once, remove one of them"
            )
        seen[str(key)] = n
        meta = row["meta"] if isinstance(row.get("meta"), dict) else {}
        reasons[str(meta.get("finish_reason", "unknown"))] += 1
        tokens += int(meta.get("completion_tokens") or 0)
    if not seen:
        raise DataError(f"{path} holds no records")
    for chunk in _chunks(path, shard_size):
        try:
            schemas.append(pa.Table.from_pylist(chunk).schema)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as err:
            raise DataError(f"{path}: records whose fields change type ({err})") from None
    try:
        schema = pa.unify_schemas(schemas, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as err:
        raise DataError(f"{path}: records whose fields change type ({err})") from None
    return ShardSummary(len(seen), _ordered(schema), dict(reasons), tokens)


def shard_name(index: int, total: int, ext: str) -> str:
    """The hub's naming of split shards: ``data/train-00000-of-00003.parquet``."""
    return f"data/{SPLIT}-{index:05d}-of-{total:05d}.{ext}"


def write_shards(records: Path, folder: Path, fmt: str, shard_size: int) -> ShardSummary:
    """Write ``records`` into ``folder/data/`` as shards of at most ``shard_size`` records.

    Args:
        records: a codit JSONL output (one record per line, each with an ``id``).
        folder: the dataset folder; its ``data/`` is replaced.
        fmt: ``parquet`` or ``jsonl``.
        shard_size: records per shard.

    Returns:
        The counts and the shard paths (relative to ``folder``).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    if fmt not in FORMATS:
        raise DataError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    summary = scan(records, shard_size)
    data = folder / "data"
    if data.exists():
        for old in data.glob(f"{SPLIT}-*"):
            old.unlink()
    data.mkdir(parents=True, exist_ok=True)
    total = -(-summary.records // shard_size)
    written = []
    num_bytes = 0
    for i, chunk in enumerate(_chunks(records, shard_size)):
        table = pa.Table.from_pylist(chunk, schema=summary.schema)
        num_bytes += table.nbytes
        rel = Path(shard_name(i, total, fmt))
        # the old shards were deleted above, so a full disk names this shard and keeps none
        with replacing(folder / rel, kept="") as handle:
            if fmt == "parquet":
                pq.write_table(table, handle)
            else:
                for row in table.to_pylist():  # every key of the schema, so shards agree
                    handle.write((json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8"))
        written.append(rel)
    return replace(summary, shards=written, num_bytes=num_bytes)
