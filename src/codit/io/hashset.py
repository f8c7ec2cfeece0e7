"""Sets and maps of 64-bit hashes in about 16 bytes per entry, for millions of ids.

A long run keeps track of every prompt id it has seen (repeated ids, dedup, the prompts the
first input pass picked); a Python set of strings costs ~100 bytes an id, these cost 16 (the hash
and an int value): new hashes wait in a small dict and are merged into sorted NumPy arrays
every ``flush_at`` of them, where a lookup is a binary search. Two different keys share a
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


class HashMap:
    """64-bit hash -> int, in sorted NumPy arrays plus a buffer of recent entries."""

    def __init__(self, flush_at: int = FLUSH_AT):
        import numpy as np

        self._np = np
        self._keys: Any = np.empty(0, dtype=np.uint64)
        self._values: Any = np.empty(0, dtype=np.int64)
        self._recent: dict[int, int] = {}
        self._flush_at = flush_at

    def __len__(self) -> int:
        return len(self._keys) + len(self._recent)

    def get(self, key: int) -> int | None:
        """The value stored for ``key``, or None."""
        if key in self._recent:
            return self._recent[key]
        i = int(self._np.searchsorted(self._keys, self._np.uint64(key)))
        if i < len(self._keys) and int(self._keys[i]) == key:
            return int(self._values[i])
        return None

    def __contains__(self, key: int) -> bool:
        return self.get(key) is not None

    def put(self, key: int, value: int = 0) -> bool:
        """Store ``value`` for a new ``key``; False (and nothing changed) if ``key`` is there."""
        if key in self:
            return False
        self._recent[key] = value
        if len(self._recent) >= self._flush_at:
            self._flush()
        return True

    def _flush(self) -> None:
        np = self._np
        keys = np.concatenate([self._keys, np.fromiter(self._recent, np.uint64, len(self._recent))])
        values = np.concatenate(
            [self._values, np.fromiter(self._recent.values(), np.int64, len(self._recent))]
        )
        order = np.argsort(keys, kind="stable")
        self._keys, self._values = keys[order], values[order]
        self._recent.clear()


class HashSet(HashMap):
    """A set of 64-bit hashes (a ``HashMap`` whose values are unused)."""

    def add(self, key: int) -> bool:
        """Add ``key``; False when it was there already."""
        return self.put(key)
