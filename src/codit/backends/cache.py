"""A persistent response cache in SQLite, so a rerun after a crash repeats no finished call.

The key is a SHA-256 hash of the backend kind, the model, the generation parameters and the
messages; the base URL and the API key are deliberately not part of it (the same model behind
another address gives the same answers, and keys are never written anywhere). Only successful
results are stored. One connection is shared by all threads behind a lock; SQLite's WAL mode lets
another process read while this one writes.

Not a general key-value store: it holds ``TextResult`` rows and nothing else.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from pathlib import Path

from codit.backends.base import GenerationParams, Message, TextResult
from codit.errors import DataError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    model TEXT NOT NULL,
    text TEXT NOT NULL,
    finish_reason TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    created REAL NOT NULL DEFAULT (julianday('now'))
)
"""


def cache_key(kind: str, model: str, params: GenerationParams, messages: list[Message]) -> str:
    """The cache key of one request: a hash of everything that determines its answer."""
    payload = json.dumps(
        {"kind": kind, "model": model, "params": params.to_dict(), "messages": messages},
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class ResponseCache:
    """Finished completions on disk, safe to share between threads.

    Args:
        path: the SQLite file; created with its parent folder if missing.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(_SCHEMA)
            self._db.commit()
        except sqlite3.DatabaseError as err:
            raise DataError(f"response cache {self.path} cannot be opened: {err}") from None

    def get(self, key: str) -> TextResult | None:
        """The stored result for ``key`` (marked ``cached=True``), or None."""
        with self._lock:
            row = self._db.execute(
                "SELECT text, finish_reason, prompt_tokens, completion_tokens"
                " FROM responses WHERE key = ?",
                (key,),
            ).fetchone()
        if row is None:
            return None
        return TextResult(row[0], row[1], row[2], row[3], cached=True)

    def put(self, key: str, kind: str, model: str, result: TextResult) -> None:
        """Store a successful result; results with an error are never stored."""
        if result.error is not None:
            return
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO responses"
                " (key, kind, model, text, finish_reason, prompt_tokens, completion_tokens)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    key,
                    kind,
                    model,
                    result.text,
                    result.finish_reason,
                    result.prompt_tokens,
                    result.completion_tokens,
                ),
            )
            self._db.commit()

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
