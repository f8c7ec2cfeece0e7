"""Append-only JSONL files that survive being killed at any instant.

A record is one line written with a single ``write`` and flushed at once, so after a crash the
file holds whole records plus at most one torn last line. ``open_appender`` cuts that torn
tail before appending (its record is simply produced again), and ``read_ids`` lists the ids
already present so that a rerun skips them: every id ends up in the file exactly once.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import IO, Any

from codit.errors import DataError


def repair_tail(path: Path) -> int:
    """Cut a torn last line (no trailing newline); returns the number of bytes removed."""
    if not path.exists():
        return 0
    size = path.stat().st_size
    if size == 0:
        return 0
    with path.open("rb+") as handle:
        handle.seek(size - 1)
        if handle.read(1) == b"\n":
            return 0
        # Walk back to the last newline.
        block = 1 << 16
        end = size
        while end > 0:
            start = max(0, end - block)
            handle.seek(start)
            chunk = handle.read(end - start)
            nl = chunk.rfind(b"\n")
            if nl >= 0:
                keep = start + nl + 1
                handle.truncate(keep)
                return size - keep
            end = start
        handle.truncate(0)
        return size


def iter_records(path: Path) -> list[dict[str, Any]]:
    """All records of a JSONL file; a line that is not JSON is a ``DataError`` naming it."""
    out = []
    with path.open(encoding="utf-8") as handle:
        for n, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise DataError(
                    f"{path}, line {n}: not valid JSON ({err.msg}); fix or remove that line"
                ) from None
    return out


def read_ids(path: Path, key: str = "id") -> set[str]:
    """Ids of the records already in ``path`` (empty when it does not exist)."""
    if not path.exists():
        return set()
    return {str(r[key]) for r in iter_records(path) if key in r}


class Appender:
    """Appends one JSON record per line and flushes each one.

    Args:
        path: the JSONL file; created (with its folder) if missing, torn tail repaired.
        fsync_every: call ``os.fsync`` after this many records (0 = only on close).
    """

    def __init__(self, path: Path, fsync_every: int = 64):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        repair_tail(path)
        self._handle: IO[str] = path.open("a", encoding="utf-8")
        self._fsync_every = fsync_every
        self._pending = 0

    def write(self, record: dict[str, Any]) -> None:
        self._handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._handle.flush()
        self._pending += 1
        if self._fsync_every and self._pending >= self._fsync_every:
            os.fsync(self._handle.fileno())
            self._pending = 0

    def close(self) -> None:
        if not self._handle.closed:
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._handle.close()

    def __enter__(self) -> Appender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
