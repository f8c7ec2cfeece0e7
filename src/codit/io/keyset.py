"""Exact sets and maps of keys on disk, for millions of ids in flat memory.

A long run keeps track of every prompt id it has seen (a repeated id is invalid), every
normalised prompt (``--dedup``) and every id already in its output (resume); a Python set of
strings costs ~100 bytes an id, so those grow with the input. ``KeySet`` and ``KeyMap`` keep
the keys themselves (exact: no hash collision can drop a prompt or a record) in a B-tree of a
private temporary SQLite database: its page cache is capped at ``CACHE_KIB`` and the rest
lives in a file that SQLite deletes itself (it is unlinked when opened, so a killed process
leaves nothing behind). A small set never leaves the cache; a large one costs disk (about the
keys' size, twice) and ~10-40 microseconds a lookup instead of memory. SQLite puts the file in
``SQLITE_TMPDIR`` or ``TMPDIR`` (else ``/var/tmp`` or ``/tmp``).

``KeyUnion`` is a read-only view of several sets (the ids of a records file and of its errors
file), so resuming never copies them into one.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator, Set
from typing import Any

CACHE_KIB = 2048  # SQLite's page cache per set; the rest spills to its temporary file
BATCH = 4096  # keys per executemany when a set is filled from an iterable
PAGE = 1024  # keys fetched at a time when iterating


def _open(schema: str) -> sqlite3.Connection:
    # "" is SQLite's private temporary on-disk database, deleted when the connection closes
    db = sqlite3.connect("", isolation_level=None, check_same_thread=False)
    db.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
    db.execute("PRAGMA journal_mode = OFF")  # nothing to roll back: the set dies with the run
    db.execute("PRAGMA synchronous = OFF")
    db.execute(schema)
    return db


class KeySet(Set[Any]):
    """An exact set of str or int keys on disk (a ``collections.abc.Set``: ``in``, ``len``,
    iteration in key order, ``==`` and ``|`` with ordinary sets).

    Args:
        keys: keys to start with (added in batches; repeats are counted once).
    """

    _schema = "CREATE TABLE keys (key PRIMARY KEY) WITHOUT ROWID"

    def __init__(self, keys: Iterable[Any] = ()):
        self._db = _open(self._schema)
        self._lock = threading.Lock()  # a record writer's set may be asked from a timer thread
        self._len = 0
        batch: list[tuple[Any, ...]] = []
        for key in keys:
            batch.append(self._row(key))
            if len(batch) >= BATCH:
                self._insert(batch)
                batch = []
        self._insert(batch)

    def _row(self, key: Any, value: Any = None) -> tuple[Any, ...]:
        return (key,)

    def _insert(self, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        marks = ", ".join("?" * len(rows[0]))
        with self._lock:
            before = self._db.total_changes
            self._db.executemany(f"INSERT OR IGNORE INTO keys VALUES ({marks})", rows)
            self._len += self._db.total_changes - before

    @classmethod
    def _from_iterable(cls, it: Iterable[Any]) -> set[Any]:
        return set(it)  # what ``a | b`` and friends return: an ordinary (small) set

    def __len__(self) -> int:
        return self._len

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str | int):
            return False
        with self._lock:
            found = self._db.execute("SELECT 1 FROM keys WHERE key = ?", (key,)).fetchone()
        return found is not None

    def __iter__(self) -> Iterator[Any]:
        # a page at a time after the last key seen, so adding keys meanwhile is safe
        query, args = "SELECT key FROM keys ORDER BY key LIMIT ?", (PAGE,)
        while True:
            with self._lock:
                page = [k for (k,) in self._db.execute(query, args)]
            yield from page
            if len(page) < PAGE:
                return
            query = "SELECT key FROM keys WHERE key > ? ORDER BY key LIMIT ?"
            args = (page[-1], PAGE)  # type: ignore[assignment]

    def add(self, key: Any, value: Any = None) -> bool:
        """Add ``key``; False (and nothing changed) if it is there already."""
        marks = ", ".join("?" * len(self._row(key, value)))
        with self._lock:
            cursor = self._db.execute(
                f"INSERT OR IGNORE INTO keys VALUES ({marks})", self._row(key, value)
            )
            added = cursor.rowcount == 1
            self._len += added
        return added

    def close(self) -> None:
        """Delete the database now (it also goes when the set is garbage collected)."""
        with self._lock:
            self._db.close()


class KeyMap(KeySet):
    """An exact map from str or int keys to an int (the first value stored is kept), on disk."""

    _schema = "CREATE TABLE keys (key PRIMARY KEY, value INTEGER) WITHOUT ROWID"

    def _row(self, key: Any, value: Any = None) -> tuple[Any, ...]:
        return (key, value)

    def put(self, key: Any, value: int) -> bool:
        """Store ``value`` for a new ``key``; False (and nothing changed) if ``key`` is there."""
        return self.add(key, value)

    def get(self, key: Any) -> int | None:
        """The value stored for ``key``, or None."""
        with self._lock:
            row = self._db.execute("SELECT value FROM keys WHERE key = ?", (key,)).fetchone()
        return None if row is None else int(row[0])


class KeyUnion:
    """``in`` any of several sets, without copying them: the ids a rerun skips."""

    def __init__(self, *parts: Set[Any]):
        self.parts = parts

    def __contains__(self, key: object) -> bool:
        return any(key in part for part in self.parts)

    def __iter__(self) -> Iterator[Any]:
        """Every key once (a key of a later part that an earlier one holds is skipped)."""
        for i, part in enumerate(self.parts):
            yield from (k for k in part if not any(k in p for p in self.parts[:i]))

    def __len__(self) -> int:
        return sum(1 for _ in self)
