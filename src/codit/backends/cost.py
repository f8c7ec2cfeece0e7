"""What a run spent on a text backend: calls, tokens and cache hits.

``Metered`` wraps any ``TextBackend`` and tallies the results that pass through it, so a pipeline
can report, per role (the strong model, the target, the judge, ...), how many calls it made, how
many came back from the response cache, how many failed, and the tokens they cost. Counters that
only the backend itself can see (HTTP requests, retries, structured-output fallbacks of the
``openai`` backend) are added to the report when the backend keeps them in ``counters``.

A tally, not a price list: codit does not know what a token costs on a given server.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from codit.backends.base import GenerationParams, Message, TextBackend, TextResult


@dataclass
class Cost:
    """Running totals of one role's calls.

    Attributes:
        calls: completions asked of the backend (not served by the cache).
        cache_hits: completions served by the response cache.
        failed: completions that came back with an error.
        prompt_tokens: prompt tokens of the new calls.
        completion_tokens: completion tokens of the new calls.
        cached_tokens: prompt and completion tokens of the cache hits (what the cache saved).
    """

    calls: int = 0
    cache_hits: int = 0
    failed: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0

    def add(self, result: TextResult) -> None:
        if result.cached:
            self.cache_hits += 1
            self.cached_tokens += result.prompt_tokens + result.completion_tokens
            return
        self.calls += 1
        self.failed += result.error is not None
        self.prompt_tokens += result.prompt_tokens
        self.completion_tokens += result.completion_tokens

    def to_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


class Metered:
    """A ``TextBackend`` that counts what goes through it; answers are unchanged.

    Args:
        backend: the backend to wrap.
    """

    def __init__(self, backend: TextBackend):
        self.backend = backend
        self.kind = backend.kind
        self.model = backend.model
        self.cost = Cost()

    def generate(
        self, conversations: list[list[Message]], params: GenerationParams
    ) -> list[TextResult]:
        results = self.backend.generate(conversations, params)
        for result in results:
            self.cost.add(result)
        return results

    def report(self) -> dict[str, Any]:
        """The tally, plus the backend's own counters (shared by every role using it)."""
        counters = getattr(self.backend, "counters", None)
        extra = {"backend": dict(counters)} if isinstance(counters, dict) else {}
        return {"model": f"{self.kind}:{self.model}", **self.cost.to_dict(), **extra}
