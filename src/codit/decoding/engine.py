"""The two-model decoding engine: instruct and base models in lockstep, one process.

Every step feeds the same token ids to both models, scores the next token with a rule from
``contrastive`` and draws it with ``sample`` (one vectorised draw for the batch, counter-based
noise keyed on the record's seed and step, so a record's tokens do not depend on its batch).
In ``direct`` mode the base model is never run.

Each row owns one slot of both models' K/V caches (``kvcache.SlotCache``) for its whole life.
A decoding step runs slots ``0 .. B-1`` in one forward per model, each slot writing its new
K/V at its own position and attending to its own first positions (``attention``). An admitted
prompt is prefilled alone into its slot, in chunks of ``prefill_chunk`` tokens, without
touching any other row; a finished row frees its slot and the next prompt takes it at once
(``continuous=True``), or, with ``continuous=False``, only when the whole batch is done, like
``model.generate``. Rows are moved down into free slots when holes waste a quarter of the batch.
Per-row state (positions, last tokens, settings, step counters) lives in device tensors; the
sampled ids are the one tensor the host reads each step.

The incremental API (``add``, ``cancel``, ``step``, ``has_work``, ``kv_stats``) serves
``codit serve``; ``generate`` is built on it. This module knows nothing of files or records.
"""

from __future__ import annotations

import hashlib
import heapq
import inspect
import logging
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

from codit.decoding import attention, graphs
from codit.decoding.config import DecodingConfig, RowSettings
from codit.decoding.contrastive import SCORE_RULES, row_scores
from codit.decoding.kvcache import SlotCache, bytes_per_token, free_bytes, parse_memory
from codit.decoding.sampling import sample
from codit.decoding.stops import StopWatch
from codit.errors import CoditError, ConfigError

log = logging.getLogger(__name__)

PREFILL_CHUNK = 512
CPU_SLOT_TOKENS = 32768  # most positions per slot on CPU when no budget is given
GPU_MEMORY_FRACTION = 0.85  # of free device memory, when no budget is given


@dataclass(frozen=True)
class Request:
    """One prompt to complete.

    Attributes:
        key: the record's id; also seeds its sampling stream.
        prompt_ids: the prompt's token ids (chat template already applied).
        max_new_tokens: per-row cap; None uses the engine's setting.
        settings: per-row decoding overrides; None uses the engine's settings.
    """

    key: str
    prompt_ids: list[int]
    max_new_tokens: int | None = None
    settings: RowSettings | None = None


@dataclass(frozen=True)
class Completion:
    """A finished row: the response, or why there is none (``error``)."""

    key: str
    text: str
    token_ids: list[int]
    finish_reason: str  # "stop" | "length" | "error" | "cancelled"
    prompt_tokens: int
    completion_tokens: int
    error: str | None = None


@dataclass
class StepOutput:
    """What one ``step`` produced: finished (or rejected) rows and each row's new tokens."""

    completions: list[Completion] = field(default_factory=list)
    tokens: dict[str, list[int]] = field(default_factory=dict)


@dataclass
class _Row:
    key: str
    prompt: list[int]
    max_new_tokens: int
    config: DecodingConfig
    watch: Any
    slot: int = -1
    length: int = 0  # positions held in the slot
    tokens: list[int] = field(default_factory=list)

    @property
    def kind(self) -> tuple[float, float, bool, bool]:
        """What the batch-wide fast paths depend on: (alpha, beta, filtering, sampling)."""
        c = self.config
        sampling = c.temperature > 0
        return (c.alpha, c.beta, sampling and (c.top_k > 0 or c.top_p < 1.0), sampling)


def row_seed(seed: int, key: str) -> int:
    """A 63-bit seed derived from the run seed and the record id."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{key}".encode()).digest()[:8], "little") >> 1


def context_length(model: Any) -> int | None:
    config = (
        model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    )
    return getattr(config, "max_position_embeddings", None)


class PairEngine:
    """Decodes requests with an instruct model and, in codit mode, its base model.

    Args:
        instruct: the post-trained model (a transformers causal LM, eval mode).
        base: its base model, or None for direct mode.
        tokenizer: the shared tokenizer (decodes responses, checks stop strings).
        decoding: the decoding settings (per-request ``RowSettings`` override them).
        stop_ids: token ids that end a response (the instruct model's EOS ids).
        vocab_size: how many logits to score (the real vocabulary, ``len(tokenizer)``).
        batch_size: most rows decoded at once (the number of cache slots).
        continuous: finished rows leave and queued prompts take their slots at once; else
            static batching (new prompts only once the whole batch is done).
        kv_cache_memory: the K/V budget of both models: None (CUDA: 85% of free memory; CPU:
            slots of up to 32k positions, grown on demand), a fraction in (0, 1] of free
            device memory, or a size such as ``"4GB"``.
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
        continuous: bool = True,
        kv_cache_memory: str | float | None = None,
    ):
        if decoding.contrastive and base is None:
            raise ValueError("codit mode needs a base model")
        attention.register()
        self.models = [instruct] + ([base] if decoding.contrastive else [])
        self.devices = [next(m.parameters()).device for m in self.models]
        self.device = self.devices[0]
        self.tokenizer = tokenizer
        self.decoding = decoding
        self._stop_set = set(stop_ids)
        self.vocab_size = vocab_size
        self.batch_size = batch_size
        self.continuous = continuous
        self.prefill_chunk = PREFILL_CHUNK
        limits = [c for c in (context_length(m) for m in self.models) if c]
        self.max_context = min(limits) if limits else None
        self._logits_to_keep = [
            "logits_to_keep" in inspect.signature(m.forward).parameters for m in self.models
        ]
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

        self._token_bytes = [bytes_per_token(m) for m in self.models]
        self.slot_tokens = self._slot_tokens(parse_memory(kv_cache_memory))
        if self.slot_tokens < 2:
            raise ConfigError(
                f"--kv-cache-memory leaves {self.slot_tokens} K/V positions per row at "
                f"--batch-size {batch_size}; raise the budget or lower the batch size"
            )
        grow = self.device.type != "cuda"
        self.caches = [SlotCache(batch_size, self.slot_tokens, grow) for _ in self.models]

        slots, dev = batch_size, self.device
        self._pos = torch.zeros(slots, dtype=torch.long, device=dev)  # positions held
        self._alive = torch.zeros(slots, dtype=torch.long, device=dev)
        self._last = torch.zeros(slots, dtype=torch.long, device=dev)  # next input token
        self._steps = torch.zeros(slots, dtype=torch.long, device=dev)  # tokens drawn so far
        self._seeds = torch.zeros(slots, dtype=torch.long, device=dev)
        self._top_k = torch.zeros(slots, dtype=torch.long, device=dev)
        self._floats = torch.zeros(4, slots, dtype=torch.float64, device=dev)  # T, p, a, b

        self._queue: deque[Request] = deque()
        self._rows: list[_Row | None] = [None] * slots
        self._free = list(range(slots))  # a heap: the lowest free slot is taken first
        self._kinds: Counter[tuple[float, float, bool, bool]] = Counter()
        self._pending: list[Completion] = []  # cancelled rows, reported by the next step
        self._peak_allocated = 0
        self._peak_held = 0
        self._warned_slot = False
        # CUDA graphs of the decoding step, when both models share one CUDA device
        self.cuda_graphs = self.device.type == "cuda" and all(
            d == self.device for d in self.devices
        )
        self._graphs: graphs.StepGraphs | None = None
        # Each admission costs a forward of both models (all weights read once more), so
        # prompts join in groups once this many slots are free, unless all queued ones fit.
        self.admit_min = max(1, batch_size // 8)
        self._static_width = 0  # static batching: the width of the running batch

    # ---- public -------------------------------------------------------------------------
    def generate(self, requests: Iterable[Request]) -> Iterator[Completion]:
        """Complete every request; yields each completion as soon as its row finishes.

        Requests are pulled from the iterable as slots free up (at most ``batch_size`` wait
        in the queue), so a huge input never sits in memory as token ids all at once.
        """
        pending = iter(requests)
        exhausted = False
        while True:
            while not exhausted and len(self._queue) < self.batch_size:
                request = next(pending, None)
                if request is None:
                    exhausted = True
                elif (problem := self._reject(request)) is not None:
                    yield problem
                else:
                    self._queue.append(request)
            if not self.has_work():
                return
            yield from self.step().completions

    def add(self, request: Request) -> None:
        """Queue a request; it is admitted by a later ``step`` when a slot is free."""
        self._queue.append(request)

    def cancel(self, key: str) -> bool:
        """Drop a queued or running row now, freeing its slot; True when one was dropped."""
        for request in self._queue:
            if request.key == key:
                self._queue.remove(request)
                n = len(request.prompt_ids)
                self._pending.append(Completion(key, "", [], "cancelled", n, 0))
                return True
        for row in self._rows:
            if row is not None and row.key == key:
                self._pending.append(
                    Completion(
                        key,
                        self._text(row.tokens),
                        list(row.tokens),
                        "cancelled",
                        len(row.prompt),
                        len(row.tokens),
                    )
                )
                self.kv_stats()  # the peaks, before the release
                self._release([row])
                return True
        return False

    def has_work(self) -> bool:
        """Rows running or queued (or cancellations not yet reported)."""
        return bool(self._queue or self._pending or len(self._free) < self.batch_size)

    def kv_stats(self) -> dict[str, int]:
        """K/V of both models: positions the slots can hold, bytes allocated and held."""
        allocated = sum(c.allocated_bytes() for c in self.caches)
        held = sum(r.length for r in self._rows if r is not None) * sum(self._token_bytes)
        self._peak_allocated = max(self._peak_allocated, allocated)
        self._peak_held = max(self._peak_held, held)
        return {
            "capacity_tokens": self.batch_size * self.slot_tokens,
            "slot_tokens": self.slot_tokens,
            "allocated_bytes": allocated,
            "held_bytes": held,
            "peak_allocated_bytes": self._peak_allocated,
            "peak_held_bytes": self._peak_held,
        }

    @torch.inference_mode()
    def step(self) -> StepOutput:
        """Admit queued requests that fit, then run one decoding step for every row."""
        out = StepOutput(completions=self._pending)
        self._pending = []
        running = [r for r in self._rows if r is not None]
        admitted: list[_Row] = []
        if self._admitting(running):
            while self._queue and self._free:
                request = self._queue.popleft()
                problem = self._reject(request)
                row = self._new_row(request) if problem is None else None
                if row is None:
                    out.completions.append(problem or self._invalid(request))
                    continue
                row.slot = heapq.heappop(self._free)
                self._rows[row.slot] = row
                self._kinds[row.kind] += 1
                admitted.append(row)
        if not running and not admitted:
            return out
        if admitted and not self.continuous:  # the batch's rows ride along until it is done
            self._static_width = max(r.slot for r in admitted) + 1
        ids = self._decode_step(running) if running else None
        if admitted:
            ids = self._admit(admitted, ids)
        assert ids is not None
        # the one host sync of the step
        drawn = ids.tolist()
        self._last[: len(drawn)] = ids
        self._steps[: len(drawn)] += self._alive[: len(drawn)]
        finished = self._advance(running + admitted, drawn, out)
        if finished:
            # Held K/V only grows between releases and buffers never shrink, so the peaks are
            # taken here, just before a release (and in cancel), not on every step.
            self.kv_stats()
            self._release(finished)
            if self.continuous:
                self._compact()
        return out

    # ---- one step -----------------------------------------------------------------------
    def _admitting(self, running: list[_Row]) -> bool:
        """Whether this step takes queued prompts into free slots."""
        if not running:
            self._static_width = 0
            return True
        if not self.continuous:
            return False
        free = len(self._free)
        return free >= self.admit_min or 0 < len(self._queue) <= free

    def _decode_step(self, running: list[_Row]) -> torch.Tensor:
        """Feed every running row its last token; (B,) ids drawn for slots 0 .. B-1.

        On CUDA the step (forwards, rule and draw) is a replayed graph, padded to a width and
        a span bucket; elsewhere the same function runs directly on the exact sizes.
        """
        width = max(max(r.slot for r in running) + 1, self._static_width)
        span = max(r.length for r in running) + 1
        if self.cuda_graphs:
            if self._graphs is None:
                self._graphs = graphs.StepGraphs()
            width = graphs.width_bucket(width, self.batch_size)
            span = graphs.span_bucket(span, self.slot_tokens)
        for c in self.caches:
            c.readable(span)
        if self.cuda_graphs and self._graphs is not None:
            kinds = sorted(self._kinds)
            setting = kinds[0] if len(kinds) == 1 else ("mixed", any(k[2] for k in kinds))
            ids = self._graphs.run(
                (width, span, setting), lambda: self._draw(self._decode(width, span))
            )
        else:
            ids = self._draw(self._decode(width, span))
        self._pos[:width] += self._alive[:width]
        for r in running:
            r.length += 1
        return ids

    def _admit(self, admitted: list[_Row], decoded: torch.Tensor | None) -> torch.Tensor:
        """Prefill the admitted rows and draw their first tokens; ids merged with ``decoded``."""
        order: list[_Row] = []
        prefilled: list[list[torch.Tensor]] = []  # per group, per model: (n, V)
        for group in self._prefill_groups(admitted):
            order += group
            long = len(group[0].prompt) > self.prefill_chunk
            prefilled.append(self._prefill(group[0]) if long else self._prefill_batch(group))
        self._activate(order)
        index = self._upload([r.slot for r in order])
        logits = [torch.cat([p[i] for p in prefilled]) for i in range(len(self.models))]
        first = self._draw(logits, index)
        width = max(
            [r.slot + 1 for r in order] + ([decoded.shape[0]] if decoded is not None else [])
        )
        ids = first.new_zeros(width)
        if decoded is not None:
            ids[: decoded.shape[0]] = decoded
        return ids.index_copy_(0, index, first)

    def _prefill_groups(self, rows: list[_Row]) -> list[list[_Row]]:
        """Long prompts alone (chunked); short ones in groups that pad at most ~25%."""
        groups: list[list[_Row]] = []
        current: list[_Row] = []
        total = 0
        budget = 8 * self.prefill_chunk  # tokens per batched forward, padding included
        for row in sorted(rows, key=lambda r: len(r.prompt)):
            n = len(row.prompt)
            if n > self.prefill_chunk:
                groups.append([row])
                continue
            width = (len(current) + 1) * n
            if current and (width > 1.25 * (total + n) or width > budget):
                groups.append(current)
                current, total = [], 0
            current.append(row)
            total += n
        if current:
            groups.append(current)
        return groups

    def _forward(self, i: int, input_ids: torch.Tensor, positions: torch.Tensor, state: Any):
        model = self.models[i]
        kwargs: dict[str, Any] = {}
        if self._logits_to_keep[i]:
            kwargs["logits_to_keep"] = 1
        with attention.slot_attention(model):
            out = model(
                input_ids=input_ids,
                position_ids=positions,
                use_cache=False,
                codit_slots=state,
                **kwargs,
            )
        return out.logits[:, -1, : self.vocab_size].to(self.device, non_blocking=True)

    def _decode(self, width: int, span: int) -> list[torch.Tensor]:
        """Feed slots 0 .. width-1 their last token; (width, V) logits per model."""
        out = []
        for i, dev in enumerate(self.devices):
            positions = self._pos[:width].to(dev, non_blocking=True)
            state = attention.Decode(self.caches[i], positions, span)
            tokens = self._last[:width].to(dev, non_blocking=True).unsqueeze(1)
            out.append(self._forward(i, tokens, positions.unsqueeze(1), state))
        return out

    def _prefill(self, row: _Row) -> list[torch.Tensor]:
        """Write the row's prompt into its slot, chunk by chunk; (1, V) logits per model."""
        ids = row.prompt
        n = len(ids)
        for c in self.caches:
            c.readable(n)
        out = []
        for i, dev in enumerate(self.devices):
            full = self._upload(ids, device=dev).unsqueeze(0)
            logits = None
            for start in range(0, n, self.prefill_chunk):
                size = min(self.prefill_chunk, n - start)
                state = attention.Prefill(self.caches[i], row.slot, start, size)
                positions = torch.arange(start, start + size, device=dev).unsqueeze(0)
                logits = self._forward(i, full[:, start : start + size], positions, state)
            assert logits is not None
            out.append(logits)
        row.length = n
        return out

    def _prefill_batch(self, rows: list[_Row]) -> list[torch.Tensor]:
        """Prefill short prompts together, left-padded; (n, V) logits per model."""
        lengths = [len(r.prompt) for r in rows]
        width = max(lengths)
        for c in self.caches:
            c.readable(width)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        positions = torch.zeros((len(rows), width), dtype=torch.long)
        for j, r in enumerate(rows):
            n = lengths[j]
            ids[j, width - n :] = torch.tensor(r.prompt)
            positions[j, width - n :] = torch.arange(n)
            r.length = n
        offsets = torch.tensor([width - n for n in lengths])
        real = torch.arange(width).unsqueeze(0) >= offsets.unsqueeze(1)
        rows_idx, cols = real.nonzero(as_tuple=True)
        slots = torch.tensor([r.slot for r in rows])[rows_idx]
        out = []
        for i, dev in enumerate(self.devices):
            state = attention.PrefillBatch(
                self.caches[i],
                offsets.to(dev),
                rows_idx.to(dev),
                slots.to(dev),
                positions[rows_idx, cols].to(dev),
                cols.to(dev),
            )
            out.append(self._forward(i, ids.to(dev), positions.to(dev), state))
        return out

    def _activate(self, rows: list[_Row]) -> None:
        """Set the device state of freshly prefilled rows (one copy per tensor)."""
        index = self._upload([r.slot for r in rows])
        ints = self._upload(
            [[r.length, 1, 0, row_seed(r.config.seed, r.key), r.config.top_k] for r in rows]
        )
        for column, t in enumerate((self._pos, self._alive, self._steps, self._seeds, self._top_k)):
            t.index_copy_(0, index, ints[:, column])
        floats = self._upload(
            [[c.temperature, c.top_p, c.alpha, c.beta] for c in (r.config for r in rows)],
            torch.float64,
        )
        self._floats.index_copy_(1, index, floats.T)

    def _draw(self, logits: list[torch.Tensor], slots: torch.Tensor | None = None) -> torch.Tensor:
        """Score with the rule and sample one token for each of the B rows of ``logits``.

        Row ``i`` is slot ``i``, or slot ``slots[i]`` when ``slots`` (B,) is given.
        """
        post = logits[0]
        base = logits[1] if len(logits) > 1 else None
        rows = slice(0, post.shape[0]) if slots is None else slots
        kinds = list(self._kinds)
        if len(kinds) == 1:  # one setting for the whole batch: the scalar rule's fast paths
            alpha, beta, _, sampling = kinds[0]
            scores = SCORE_RULES[self.decoding.rule](post, base, alpha, beta)
            if not sampling:
                return scores.argmax(dim=-1)
        f = self._floats[:, rows]
        if len(kinds) != 1:
            scores = row_scores(self.decoding.rule, post, base, f[2], f[3])
        return sample(
            scores,
            f[0],
            self._top_k[rows],
            f[1],
            self._seeds[rows],
            self._steps[rows],
            filtering=any(k[2] for k in kinds),
        )

    def _advance(self, rows: list[_Row], drawn: list[int], out: StepOutput) -> list[_Row]:
        """Append each row's token; returns the rows that finished (their completions added)."""
        finished = []
        for row in rows:
            token = drawn[row.slot]
            row.tokens.append(token)
            reason = None
            if token in self._stop_set or row.watch is not None and row.watch.hit(row.tokens):
                reason = "stop"
            elif len(row.tokens) >= row.max_new_tokens:
                reason = "length"
            if reason is None or token not in self._stop_set:
                out.tokens[row.key] = [token]
            if reason is None:
                continue
            finished.append(row)
            body = row.tokens[:-1] if token in self._stop_set else row.tokens
            text = self._text(body)
            if row.watch is not None:
                text = row.watch.cut(text)
            out.completions.append(
                Completion(
                    row.key, text, list(row.tokens), reason, len(row.prompt), len(row.tokens)
                )
            )
        return finished

    def _release(self, rows: list[_Row]) -> None:
        """Free the rows' slots (their positions are never read again)."""
        slots = [r.slot for r in rows]
        index = self._upload(slots)
        self._alive.index_fill_(0, index, 0)
        self._pos.index_fill_(0, index, 0)
        for r in rows:
            self._rows[r.slot] = None
            self._kinds[r.kind] -= 1
            if not self._kinds[r.kind]:
                del self._kinds[r.kind]
            heapq.heappush(self._free, r.slot)

    def _compact(self) -> None:
        """Move the highest rows into lower free slots once holes waste a quarter of the batch."""
        live = [r for r in self._rows if r is not None]
        if not live:
            return
        width = max(r.slot for r in live) + 1
        if width - len(live) < max(1, width // 4):
            return
        for row in sorted(live, key=lambda r: -r.slot):
            if not self._free or self._free[0] > row.slot:
                break
            dst, src = heapq.heappop(self._free), row.slot
            for c in self.caches:
                c.move(src, dst, row.length)
            for t in (self._pos, self._alive, self._last, self._steps, self._seeds, self._top_k):
                t[dst] = t[src]
            self._floats[:, dst] = self._floats[:, src]
            self._alive[src] = 0
            self._pos[src] = 0
            self._rows[dst], self._rows[src] = row, None
            row.slot = dst
            heapq.heappush(self._free, src)

    # ---- rows ---------------------------------------------------------------------------
    def _slot_tokens(self, budget: int | float | None) -> int:
        """Positions per slot that the budget allows (and the context needs, at most)."""
        limit = self.max_context or CPU_SLOT_TOKENS
        if budget is None and self.device.type != "cuda":
            return min(limit, CPU_SLOT_TOKENS)
        if isinstance(budget, int):
            capacity = budget // sum(self._token_bytes)
        else:
            fraction = GPU_MEMORY_FRACTION if budget is None else budget
            per_device: dict[torch.device, int] = Counter()
            for dev, size in zip(self.devices, self._token_bytes, strict=True):
                per_device[dev] += size
            capacity = min(int(fraction * free_bytes(d)) // b for d, b in per_device.items())
        return min(limit, capacity // self.batch_size)

    def _new_row(self, request: Request) -> _Row | None:
        try:
            config = request.settings.resolve(self.decoding) if request.settings else self.decoding
        except CoditError:
            return None
        if not self.decoding.contrastive and (config.alpha or config.beta):
            config = DecodingConfig(**{**vars(config), "alpha": 0.0, "beta": 0.0})
        n = len(request.prompt_ids)
        limit = request.max_new_tokens or config.max_new_tokens
        if self.max_context:
            limit = min(limit, self.max_context - n)
        if n + limit > self.slot_tokens:
            if not self._warned_slot:
                log.warning(
                    "responses are cut at %d prompt + response tokens, the K/V cache slot size "
                    "(raise --kv-cache-memory or lower --batch-size)",
                    self.slot_tokens,
                )
                self._warned_slot = True
            limit = self.slot_tokens - n
        watch = StopWatch(self.tokenizer, config.stop) if config.stop else None
        return _Row(request.key, list(request.prompt_ids), limit, config, watch)

    def _invalid(self, request: Request) -> Completion:
        n = len(request.prompt_ids)
        try:
            if request.settings:
                request.settings.resolve(self.decoding)
            reason = "the request's settings are invalid"
        except CoditError as err:
            reason = f"the request's settings are invalid: {err}"
        return Completion(request.key, "", [], "error", n, 0, error=reason)

    def _upload(
        self, values: list[Any], dtype: torch.dtype = torch.long, device: torch.device | None = None
    ) -> torch.Tensor:
        """A host list on the device without a blocking copy (pinned memory on CUDA)."""
        device = device or self.device
        if device.type != "cuda":
            return torch.tensor(values, dtype=dtype, device=device)
        return torch.tensor(values, dtype=dtype).pin_memory().to(device, non_blocking=True)

    def _text(self, tokens: list[int]) -> str:
        return self.tokenizer.decode(tokens, skip_special_tokens=True)

    def _reject(self, request: Request) -> Completion | None:
        n = len(request.prompt_ids)
        reason = None
        if n == 0:
            reason = "the prompt has no tokens"
        elif self.max_context and n >= self.max_context:
            reason = f"the prompt has {n} tokens but the model's context holds {self.max_context}"
        elif n >= self.slot_tokens:
            reason = (
                f"the prompt has {n} tokens but a K/V cache slot holds {self.slot_tokens} "
                "(raise --kv-cache-memory or lower --batch-size)"
            )
        if reason is None:
            return None
        return Completion(request.key, "", [], "error", n, 0, error=reason)
