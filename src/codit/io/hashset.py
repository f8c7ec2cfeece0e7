"""Sets and maps of 64-bit hashes in 8 (set) or 16 (map) bytes per entry, for millions of ids.

A long run keeps track of every prompt id it has seen (repeated ids, dedup, the prompts the
first input pass picked); a Python set of strings costs ~100 bytes an id. Here new hashes wait
in a small dict and are inserted into sorted NumPy arrays every ``flush_at`` of them (the
merge needs one new array, so the peak is twice the set's size), and a lookup is a binary
search. Two different keys share a
hash with probability about n^2 / 2^65 (3e-8 for a million keys); a caller that cannot afford
that keeps the keys themselves.
"""

from __future__ import annotations

import hashlib
from typing import Any

FLUSH_AT = 1 << 16


def text_hash(text: str) -> int:
    """A 64-bit hash of ``text`` (stable across runs and machines, unlike ``hash``)."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")


class HashSet:
    """A set of 64-bit hashes: a sorted NumPy array (8 bytes each) plus a buffer of recent ones."""

    def __init__(self, flush_at: int = FLUSH_AT):
        import numpy as np

        self._np = np
        self._keys: Any = np.empty(0, dtype=np.uint64)
        self._recent: dict[int, int] = {}
        self._flush_at = flush_at

    def __len__(self) -> int:
        return len(self._keys) + len(self._recent)

    def _index(self, key: int) -> int | None:
        i = int(self._np.searchsorted(self._keys, self._np.uint64(key)))
        return i if i < len(self._keys) and int(self._keys[i]) == key else None

    def __contains__(self, key: int) -> bool:
        return key in self._recent or self._index(key) is not None

    def add(self, key: int, value: int = 0) -> bool:
        """Add ``key`` (with ``value``, for a ``HashMap``); False, nothing changed, if it is there."""
        if key in self:
            return False
        self._recent[key] = value
        if len(self._recent) >= self._flush_at:
            self._flush()
        return True

    def _merge(self) -> Any:
        """Insert the recent keys into the sorted array; returns where the new keys went."""
        np = self._np
        new = np.fromiter(self._recent, np.uint64, len(self._recent))
        order = np.argsort(new)
        new = new[order]
        at = np.searchsorted(self._keys, new)
        self._keys = np.insert(self._keys, at, new)  # one new array: peak twice the set, not more
        return at, order

    def _flush(self) -> None:
        self._merge()
        self._recent.clear()


class HashMap(HashSet):
    """64-bit hash -> int (16 bytes an entry): the first value stored for each key is kept."""

    def __init__(self, flush_at: int = FLUSH_AT):
        super().__init__(flush_at)
        self._values: Any = self._np.empty(0, dtype=self._np.int64)

    def get(self, key: int) -> int | None:
        """The value stored for ``key``, or None."""
        if key in self._recent:
            return self._recent[key]
        i = self._index(key)
        return None if i is None else int(self._values[i])

    def put(self, key: int, value: int) -> bool:
        """Store ``value`` for a new ``key``; False (and nothing changed) if ``key`` is there."""
        return self.add(key, value)

    def _flush(self) -> None:
        np = self._np
        values = np.fromiter(self._recent.values(), np.int64, len(self._recent))
        at, order = self._merge()
        self._values = np.insert(self._values, at, values[order])
        self._recent.clear()
