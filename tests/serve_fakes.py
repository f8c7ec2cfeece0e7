"""A fake engine with the incremental API of the helpers' contract, for the serve tests.

``FakeEngine`` decodes nothing: each row appends ids from a fixed cycle, one per step, until it
has ``max_new_tokens`` (or the engine's ``length``), so tests control exactly how long rows run
(``length=10**9`` runs until cancelled). It counts what was added, cancelled and finished.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from codit.decoding.engine import Completion, StepOutput


@dataclass
class _Row:
    request: Any
    tokens: list[int] = field(default_factory=list)


class FakeEngine:
    def __init__(
        self,
        tokenizer: Any,
        cycle: tuple[int, ...] = (),
        length: int = 5,
        batch_size: int = 4,
        delay: float = 0.0,
    ):
        self.tokenizer = tokenizer
        # Ids of ordinary word pieces of the tokenizer; decoded they make text.
        self.cycle = cycle or tuple(
            tokenizer("the cat sat on a mat", add_special_tokens=False)["input_ids"]
        )
        self.length = length
        self.batch_size = batch_size
        self.delay = delay
        self.queue: list[Any] = []
        self.rows: dict[str, _Row] = {}
        self.added: list[str] = []
        self.cancelled: list[str] = []
        self.finished: list[str] = []
        self.settings: dict[str, Any] = {}
        self.lock = threading.Lock()  # the tests read the counts from other threads

    def add(self, request: Any) -> None:
        with self.lock:
            self.queue.append(request)
            self.added.append(request.key)
            self.settings[request.key] = request.settings

    def cancel(self, key: str) -> bool:
        with self.lock:
            for r in self.queue:
                if r.key == key:
                    self.queue.remove(r)
                    self.cancelled.append(key)
                    return True
            if self.rows.pop(key, None) is not None:
                self.cancelled.append(key)
                return True
            return False

    def has_work(self) -> bool:
        with self.lock:
            return bool(self.queue or self.rows)

    def running(self) -> int:
        with self.lock:
            return len(self.rows) + len(self.queue)

    def step(self) -> StepOutput:
        if self.delay:
            time.sleep(self.delay)
        out = StepOutput()
        with self.lock:
            while self.queue and len(self.rows) < self.batch_size:
                r = self.queue.pop(0)
                self.rows[r.key] = _Row(r)
            for key, row in list(self.rows.items()):
                token = self.cycle[len(row.tokens) % len(self.cycle)]
                row.tokens.append(token)
                out.tokens[key] = [token]
                if len(row.tokens) >= (row.request.max_new_tokens or self.length):
                    del self.rows[key]
                    self.finished.append(key)
                    out.completions.append(
                        Completion(
                            key,
                            self.tokenizer.decode(row.tokens, skip_special_tokens=True),
                            list(row.tokens),
                            "length",
                            len(row.request.prompt_ids),
                            len(row.tokens),
                        )
                    )
        return out


def wait_until(predicate: Any, timeout: float = 20.0) -> bool:
    """Poll ``predicate`` until it is true; False after ``timeout`` (a bound, not a timing)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return bool(predicate())
