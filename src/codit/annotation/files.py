"""Every file the annotation commands read or write, in one place.

``annotate`` writes through ``codit.io.rundir.Run`` like every writing command (the output's
lock, its manifest, one line per finished record, a rerun skips the ids already there) and
keeps its response cache beside the output the way ``codeclm`` and ``ecd`` do; its report is
written atomically. ``filter`` and ``select`` are whole-file transforms: they write their output
to a temporary file and rename it, so a rerun with other flags replaces it and a crash never
leaves half a dataset. Nothing else in ``codit.annotation`` touches the disk.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codit.errors import DataError
from codit.evaluation.responses import Response, response_of
from codit.io.atomic import write_json, write_lines
from codit.io.jsonl import iter_records, read_records
from codit.pipelines.outputs import check_output, side, with_cache

# The run layer's and the prompted pipelines' helpers, used as they are.
__all__ = [
    "Item",
    "check_paths",
    "read_items",
    "read_records",
    "report_path",
    "with_cache",
    "write_json",
    "write_records",
]


def check_paths(input: str | None, output: str | None, problems: list[str]) -> None:
    """Collect the problems of ``--input`` and ``--output`` (for a config's ``__post_init__``)."""
    if not input:
        problems.append("--input is required")
    check_output(output, problems)
    if input and output and Path(input).resolve() == Path(output).resolve():
        problems.append("--output must differ from --input")


@dataclass(frozen=True)
class Item:
    """One input record: where it is, the record as read, and its query and answer."""

    line: int
    record: dict[str, Any]
    response: Response

    @property
    def id(self) -> str:
        return str(self.record["id"])


def read_items(path: str | Path, limit: int | None = None, need_ids: bool = True) -> list[Item]:
    """The records of a JSONL file with their responses, in order.

    Args:
        path: the records (``codit generate`` output or any format ``codit eval`` reads).
        limit: read only the first ``limit`` records.
        need_ids: require a unique ``id`` on every record (what resuming goes by).

    Raises:
        DataError: the file is missing or malformed, or an id is missing or repeated.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"records file {path} does not exist")
    items: list[Item] = []
    seen: dict[str, int] = {}
    for n, record in enumerate(iter_records(path), 1):
        if limit is not None and len(items) >= limit:
            break
        where = f"{path}, record {n}"
        if not isinstance(record, dict):
            raise DataError(f"{where} is not a JSON object")
        if need_ids:
            if record.get("id") is None:
                raise DataError(f"{where} has no 'id'; records need ids so that a rerun resumes")
            rid = str(record["id"])
            if rid in seen:
                raise DataError(f"{where}: id {rid!r} already appears in record {seen[rid]}")
            seen[rid] = n
        items.append(Item(n, record, response_of(record, where)))
    return items


def report_path(output: Path) -> Path:
    """``out.jsonl`` -> ``out.report.json``."""
    return side(output, "report", ".json")


def write_records(path: Path, records: list[dict[str, Any]]) -> None:
    """Replace ``path`` with ``records``, one JSON line each, atomically."""
    write_lines(path, records)
