"""A stand-in for the engine's incremental API, built on today's ``PairEngine``.

``codit serve`` drives its engine through ``add``/``cancel``/``step``/``has_work`` with
per-request ``RowSettings`` (see the helpers' contract). Until ``decoding.engine`` provides
that API itself, this adapter does: requests that share settings share one continuous batch of
a ``PairEngine`` (built for those settings, over the same loaded models); requests with other
settings (a different temperature, seed or alpha) decode in their own batch, stepped in turn.
Greedy rows ignore seed, top-p and top-k, so every greedy request with the same alpha/beta
shares one batch. The adapter reaches into the engine's private batch helpers (``_step``,
``_keep``, ``_reject``) and goes away once the engine has the API.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from codit.decoding.config import DecodingConfig
from codit.decoding.engine import Completion, PairEngine, _Batch
from codit.decoding.engine import Request as EngineRequest


@dataclass(frozen=True)
class RowSettings:
    """Per-request decoding settings; None keeps the engine's ``DecodingConfig`` value."""

    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    alpha: float | None = None
    beta: float | None = None
    seed: int | None = None
    stop: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Request:
    """A prompt to complete, with its own settings (the contract's ``Request``)."""

    key: str
    prompt_ids: list[int]
    max_new_tokens: int | None = None
    settings: RowSettings | None = None


@dataclass
class StepOutput:
    """What one ``step`` finished, and the new tokens of every row it advanced."""

    completions: list[Completion] = field(default_factory=list)
    tokens: dict[str, list[int]] = field(default_factory=dict)


@dataclass
class _Group:
    engine: PairEngine
    state: _Batch = field(default_factory=_Batch)
    queue: deque[EngineRequest] = field(default_factory=deque)


class LegacyEngine:
    """The incremental API over one ``PairEngine`` per distinct row settings.

    Args: as ``PairEngine`` (continuous batching is always on).
    """

    def __init__(
        self,
        instruct: Any,
        base: Any | None,
        tokenizer: Any,
        decoding: DecodingConfig,
        stop_ids: list[int],
        vocab_size: int,
        batch_size: int = 8,
    ):
        self._args = (instruct, base, tokenizer)
        self.decoding = decoding
        self._stop_ids = stop_ids
        self._stop_set = set(stop_ids)
        self.vocab_size = vocab_size
        self.batch_size = batch_size
        self._groups: dict[DecodingConfig, _Group] = {}
        self._where: dict[str, DecodingConfig] = {}
        self.max_context = self._engine_for(decoding).max_context

    def _resolve(self, settings: RowSettings | None) -> DecodingConfig:
        d = self.decoding
        values = {
            k: v for k, v in dataclasses.asdict(settings or RowSettings()).items() if v is not None
        }
        if "stop" in values:
            values["stop"] = tuple(values["stop"])
        resolved = dataclasses.replace(d, **values)
        if resolved.temperature == 0:  # greedy: seed and filters change nothing
            resolved = dataclasses.replace(resolved, seed=0, top_p=1.0, top_k=0)
        return resolved

    def _engine_for(self, decoding: DecodingConfig) -> PairEngine:
        instruct, base, tokenizer = self._args
        return PairEngine(
            instruct,
            base,
            tokenizer,
            decoding,
            self._stop_ids,
            self.vocab_size,
            batch_size=self.batch_size,
            continuous=True,
        )

    # ---- the contract -------------------------------------------------------------------
    def add(self, request: Request) -> None:
        """Queue a request behind the others with the same settings."""
        decoding = self._resolve(request.settings)
        group = self._groups.get(decoding)
        if group is None:
            group = self._groups[decoding] = _Group(self._engine_for(decoding))
        group.queue.append(EngineRequest(request.key, request.prompt_ids, request.max_new_tokens))
        self._where[request.key] = decoding

    def cancel(self, key: str) -> bool:
        """Drop a queued or running row; True when there was one."""
        decoding = self._where.pop(key, None)
        if decoding is None:
            return False
        group = self._groups[decoding]
        for queued in group.queue:
            if queued.key == key:
                group.queue.remove(queued)
                return True
        keep = [j for j, row in enumerate(group.state.rows) if row.key != key]
        group.engine._keep(group.state, keep)
        return True

    def has_work(self) -> bool:
        return bool(self._where)

    def step(self) -> StepOutput:
        """One decoding step of every batch that has work."""
        out = StepOutput()
        for decoding, group in list(self._groups.items()):
            admitted: list[EngineRequest] = []
            while group.queue and len(group.state.rows) + len(admitted) < self.batch_size:
                request = group.queue.popleft()
                problem = group.engine._reject(request)
                if problem is None:
                    admitted.append(request)
                else:
                    out.completions.append(problem)
            if group.state.rows or admitted:
                done = group.engine._step(group.state, admitted)
                out.completions.extend(done)
                for row in group.state.rows:
                    out.tokens[row.key] = row.tokens[-1:]
                for c in done:
                    last = c.token_ids[-1:]
                    out.tokens[c.key] = [] if set(last) & self._stop_set else last
            if not group.queue and not group.state.rows:
                del self._groups[decoding]
        for c in out.completions:
            self._where.pop(c.key, None)
        return out

    def generate(self, requests: Iterable[Request]) -> Iterator[Completion]:
        """Complete every request (all queued at once); for tests and offline comparisons."""
        for request in requests:
            self.add(request)
        while self.has_work():
            yield from self.step().completions
