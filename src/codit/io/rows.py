"""Input files as a lazy stream of rows: (location, raw object) pairs, or why a row is unreadable.

``iter_rows`` reads JSONL, JSON (a list of objects), CSV (with a header), Parquet or a saved
``datasets`` directory one row at a time and yields a ``Line`` per row: ``file, line N`` for
JSONL and CSV, ``file, record N`` for the others. Problems that spoil the whole file (not
UTF-8 at all, a JSON object where a list belongs, a Parquet or CSV file that is not one) raise
``DataError`` at once; a bad row is yielded as ``Invalid`` so the caller can report every one.
What a row must contain is the caller's business (``codit.io.prompts``).
"""

from __future__ import annotations

import codecs
import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from codit.errors import DataError
from codit.io.invalid import RAW_CHARS, Invalid
from codit.io.jsonl import Line, iter_lines, refuse_utf16

SUFFIXES = (".jsonl", ".json", ".csv", ".parquet")


def iter_rows(path: Path) -> Iterator[Line]:
    """Every row of a supported input, lazily (see the module docstring)."""
    path = Path(path)
    if path.is_dir():
        yield from _dataset_rows(path)
        return
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        yield from iter_lines(path)
    elif suffix == ".json":
        yield from _json_rows(path)
    elif suffix == ".csv":
        yield from _csv_rows(path)
    elif suffix == ".parquet":
        yield from _parquet_rows(path)
    else:
        raise DataError(
            f"{path}: unknown input format {suffix!r}; use .jsonl, .json, .csv, .parquet or a "
            "datasets directory"
        )


def _json_rows(path: Path) -> Iterator[Line]:
    raw = path.read_bytes()
    refuse_utf16(path, raw)
    try:
        text = raw.removeprefix(codecs.BOM_UTF8).decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise DataError(
            f"{path}, line {line}: not valid UTF-8 (byte 0x{raw[err.start]:02x})"
        ) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise DataError(f"{path}, line {err.lineno}: not valid JSON ({err.msg})") from None
    if isinstance(data, dict) and len(data) == 1 and isinstance(next(iter(data.values())), list):
        data = next(iter(data.values()))  # {"data": [...]}
    if not isinstance(data, list):
        kind = "an object" if isinstance(data, dict) else f"a {type(data).__name__}"
        raise DataError(
            f"{path} holds {kind}, not a list of records; write [{{...}}, {{...}}] or one "
            "object per line as .jsonl"
        )
    for n, row in enumerate(data, 1):
        yield _checked(row, n, f"{path}, record {n}")


def _checked(row: Any, n: int, where: str) -> Line:
    if isinstance(row, dict):
        return Line(n, where, row)
    kind = "list" if isinstance(row, list) else type(row).__name__
    return Line(n, where, None, Invalid(where, f"a {kind}, not an object", repr(row)[:RAW_CHARS]))


def _csv_rows(path: Path) -> Iterator[Line]:
    with path.open("rb") as handle:
        head = handle.read(4096)
    refuse_utf16(path, head)
    if b"\0" in head:
        raise DataError(f"{path} is not a CSV file (it holds binary data)")
    with path.open(encoding="utf-8-sig", errors="surrogateescape", newline="") as handle:
        reader = csv.DictReader(handle)
        try:
            header = list(reader.fieldnames or [])
            if not header:
                raise DataError(f"{path} is empty; a CSV input needs a header line")
            for row in reader:
                yield _csv_row(path, reader.line_num, header, row)
        except csv.Error as err:
            raise DataError(
                f"{path}, line {reader.line_num}: not a readable CSV row ({err})"
            ) from None


def _csv_row(path: Path, line: int, header: list[str], row: dict[Any, Any]) -> Line:
    where = f"{path}, line {line}"
    raw = ",".join(str(v) for v in row.values() if isinstance(v, str))
    if any(isinstance(v, str) and _has_surrogates(v) for v in row.values()):
        return Line(line, where, None, Invalid(where, "not valid UTF-8", _clean(raw)))
    if None in row:
        return Line(
            line, where, None, Invalid(where, f"more fields than the header's {len(header)}", raw)
        )
    if any(v is None for v in row.values()):
        return Line(
            line, where, None, Invalid(where, f"fewer fields than the header's {len(header)}", raw)
        )
    return Line(line, where, dict(row))


def _has_surrogates(text: str) -> bool:
    return any("\udc80" <= c <= "\udcff" for c in text)


def _clean(text: str) -> str:
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")[:RAW_CHARS]


def _parquet_rows(path: Path) -> Iterator[Line]:
    import pyarrow.parquet as pq

    try:
        # a buffered stream, one row group at a time: reading the whole file in one
        # iter_batches kept ~50 bytes a row (the column chunks) until the end
        parquet = pq.ParquetFile(path, buffer_size=1 << 20, pre_buffer=False)
    except Exception as err:  # pyarrow raises several kinds for a file that is not Parquet
        raise DataError(f"{path} is not a Parquet file ({err})") from None
    n = 0
    for group in range(parquet.num_row_groups):
        for batch in parquet.iter_batches(batch_size=1024, row_groups=[group], use_threads=False):
            for row in batch.to_pylist():
                n += 1
                yield Line(n, f"{path}, record {n}", row)


def _dataset_rows(path: Path) -> Iterator[Line]:
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
    for n, row in enumerate(data, 1):
        yield Line(n, f"{path}, record {n}", dict(row))
