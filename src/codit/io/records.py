"""Append-only record files that survive being killed, a power cut or a full disk.

A record is one JSON line written with one ``write`` call, so the kernel holds it as soon as it
is written (a killed process loses nothing it finished). ``RecordWriter`` fsyncs after every
``fsync_every`` records and at most ``fsync_seconds`` after the first unsynced record, so a
power cut loses at most that window. A crash can leave one torn last line: ``repair_tail``
cuts it when the file is opened again, and its record is simply made again. A write that finds
no room is undone (the file is cut back to its last whole record) and raises ``OutOfSpace``.

Duplicate ids: a writer appends a record only if its key (its ``id``) is not in the file yet,
so a rerun that recomputes finished work writes nothing twice and every id is in the file once.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from codit.io.atomic import NO_SPACE, out_of_space
from codit.io.jsonl import iter_objects
from codit.io.keyset import KeySet

log = logging.getLogger(__name__)

FSYNC_EVERY = 64  # records between fsyncs
FSYNC_SECONDS = 5.0  # longest time a finished record waits for its fsync


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
        block, end, keep = 1 << 16, size, 0
        while end > 0:
            start = max(0, end - block)
            handle.seek(start)
            nl = handle.read(end - start).rfind(b"\n")
            if nl >= 0:
                keep = start + nl + 1
                break
            end = start
        handle.truncate(keep)
    removed = size - keep
    log.warning("%s: cut a torn last line (%d bytes) left by an interrupted run", path, removed)
    return removed


def record_id(record: dict[str, Any]) -> str | None:
    """The exactly-once key of a record: its ``id`` (None: always written)."""
    return None if record.get("id") is None else str(record["id"])


def error_key(record: dict[str, Any]) -> str | None:
    """The key of an errors-file record: the failed record's id, or the bad input line."""
    if record.get("id") is not None:
        return str(record["id"])
    return None if record.get("input") is None else f"input:{record['input']}"


class RecordWriter:
    """Appends one JSON record per line, each id once; flushed at once, fsynced periodically.

    Args:
        path: the JSONL file; created with its folder, a torn last line cut first.
        key: a record's exactly-once key (``record_id``); a record whose key the file holds
            already is not written again. None keys are always written.
        fsync_every: fsync after this many records (0: only on close).
        fsync_seconds: fsync at most this long after the first unsynced record (0: no timer).
    """

    def __init__(
        self,
        path: Path,
        key: Callable[[dict[str, Any]], str | None] = record_id,
        fsync_every: int = FSYNC_EVERY,
        fsync_seconds: float = FSYNC_SECONDS,
    ):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        repair_tail(self.path)
        self._key = key
        # read a line at a time; the ids go to an exact set on disk, so memory stays flat
        self.ids = KeySet(k for r in iter_objects(self.path, True) if (k := key(r)) is not None)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._size = os.fstat(self._fd).st_size
        self._every, self._seconds = fsync_every, fsync_seconds
        self._pending = 0
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()
        self.written = 0

    def write(self, record: dict[str, Any]) -> bool:
        """Append ``record`` unless its key is already there; returns whether it was written.

        Raises:
            OutOfSpace: no room for the line; the file is left ending with a whole record.
        """
        key = self._key(record)
        if key is not None and key in self.ids:
            return False
        data = (json.dumps(record, ensure_ascii=False, default=str) + "\n").encode("utf-8")
        with self._lock:
            self._append(data)
            self._pending += 1
            if self._every and self._pending >= self._every:
                self._sync()
            elif self._seconds and self._timer is None:
                self._timer = threading.Timer(self._seconds, self.sync)
                self._timer.daemon = True
                self._timer.start()
        if key is not None:
            self.ids.add(key)
        self.written += 1
        return True

    def _append(self, data: bytes) -> None:
        start, view = self._size, memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as err:
            os.ftruncate(self._fd, start)  # never leave half a line behind
            if err.errno in NO_SPACE:
                kept = f" (its {len(self.ids)} whole records are kept)"
                raise out_of_space(self.path, err, kept) from None
            raise
        self._size = start + len(data)

    def sync(self) -> None:
        """fsync what was written (called by the timer, on close, and every ``fsync_every``)."""
        with self._lock:
            self._sync()

    def _sync(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._fd >= 0 and self._pending:
            os.fsync(self._fd)
            self._pending = 0

    def close(self) -> None:
        with self._lock:
            if self._fd < 0:
                return
            try:
                self._sync()
            finally:
                os.close(self._fd)
                self._fd = -1

    def __enter__(self) -> RecordWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
