"""The two-model decoding engine: instruct and base models in lockstep, one process.

Every step feeds the same token ids to both models, scores the next token with a rule from
``contrastive`` and draws it with ``sample`` (one vectorised draw for the batch, counter-based
noise keyed on the record's seed and step, so a record's tokens do not depend on its batch).
In ``direct`` mode the base model is never run.

K/V lives in length cohorts (``cohorts``, ``kvcache``): a row is placed, when admitted, in the
cohort of rows of about its length and keeps its place for life, so buffers hold about what
rows hold. A decoding step runs the whole batch in one forward per model; attention writes
each row's new K/V at its own position and runs one SDPA per cohort (``attention``); on a CPU
in float32 the linear layers take few-row products in the GEMM that measured faster there
(``gemm``). Admitted prompts are prefilled into their own rows (``prefill``: long ones in
chunks) without touching any other row; a finished row leaves at once (``continuous=True``)
and the next prompt is admitted, or, with ``continuous=False``, rows ride along until the
whole batch is done, like ``model.generate``. Per-row state lives in device tensors
(``rows.RowState``), reordered when rows join or leave so that each cohort's rows are
contiguous; the sampled ids are the one tensor the host reads each step.

The incremental API (``add``, ``cancel``, ``step``, ``has_work``, ``kv_stats``) serves
``codit serve``; ``generate`` is built on it. This module knows nothing of files or records.
"""

from __future__ import annotations

import inspect
import logging
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from typing import Any

import torch

from codit.decoding import attention, gemm, graphs, prefill
from codit.decoding.cohorts import Layout
from codit.decoding.config import DecodingConfig
from codit.decoding.contrastive import SCORE_RULES, row_scores
from codit.decoding.kvcache import CohortCache, bytes_per_token, free_bytes, parse_memory
from codit.decoding.rows import Completion, Request, Row, RowState, StepOutput, row_seed, upload
from codit.decoding.sampling import sample
from codit.decoding.stops import StopWatch
from codit.errors import CoditError, ConfigError

__all__ = ["Completion", "PairEngine", "Request", "StepOutput", "row_seed"]

log = logging.getLogger(__name__)

PREFILL_CHUNK = 512
CPU_SLOT_TOKENS = 32768  # most positions per row on CPU when no budget is given
GPU_MEMORY_FRACTION = 0.85  # of free device memory, when no budget is given


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
        batch_size: most rows decoded at once.
        continuous: finished rows leave and queued prompts take their places at once; else
            static batching (new prompts only once the whole batch is done).
        kv_cache_memory: the K/V budget of both models: None (CUDA: 85% of free memory; CPU:
            up to 32k positions per row, allocated as rows grow), a fraction in (0, 1] of free
            device memory, or a size such as ``"4GB"``. Every row may hold up to
            budget / batch size positions.
        fixed_slots: one K/V buffer of ``batch_size`` rows x the positions the budget allows,
            allocated once (what CUDA graphs need; None: on CUDA), instead of cohorts.
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
        fixed_slots: bool | None = None,
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
        # float32 linear layers on CPU: few-row products in the faster GEMM (``gemm``)
        self._linears = [gemm.linears(m) for m in self.models]
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

        self._token_bytes = [bytes_per_token(m) for m in self.models]
        self.slot_tokens = self._slot_tokens(parse_memory(kv_cache_memory))
        if self.slot_tokens < 2:
            raise ConfigError(
                f"--kv-cache-memory leaves {self.slot_tokens} K/V positions per row at "
                f"--batch-size {batch_size}; raise the budget or lower the batch size"
            )
        fixed = self.device.type == "cuda" if fixed_slots is None else fixed_slots
        self.caches = [CohortCache() for _ in self.models]
        self.layout = Layout(self.caches, batch_size, self.slot_tokens, fixed=fixed)
        self.state = RowState(batch_size, self.device)

        self._queue: deque[Request] = deque()
        self._batch: list[Row] = []  # batch row i is _batch[i] (its slot is i)
        self._kinds: Counter[tuple[float, float, bool, bool]] = Counter()  # of live rows
        self._pending: list[Completion] = []  # cancelled rows, reported by the next step
        self._peak_held = 0
        self._warned_slot = False
        # CUDA graphs of the decoding step (fixed buffers), when both models share one device
        self.cuda_graphs = (
            fixed and self.device.type == "cuda" and all(d == self.device for d in self.devices)
        )
        self._graphs: graphs.StepGraphs | None = None
        # Each admission costs a forward of both models (all weights read once more), so
        # prompts join in groups once this many rows are free, unless all queued ones fit.
        self.admit_min = max(1, batch_size // 8)

    # ---- public -------------------------------------------------------------------------
    def generate(self, requests: Iterable[Request]) -> Iterator[Completion]:
        """Complete every request; yields each completion as soon as its row finishes.

        Requests are pulled from the iterable as rows free up (at most ``batch_size`` wait
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
        """Queue a request; it is admitted by a later ``step`` when a row is free."""
        self._queue.append(request)

    def cancel(self, key: str) -> bool:
        """Drop a queued or running row now, freeing its K/V; True when one was dropped."""
        for request in self._queue:
            if request.key == key:
                self._queue.remove(request)
                n = len(request.prompt_ids)
                self._pending.append(Completion(key, "", [], "cancelled", n, 0))
                return True
        for row in self._batch:
            if row.key == key and not row.done:
                tokens = list(row.tokens)
                self._pending.append(
                    Completion(
                        key, self._text(tokens), tokens, "cancelled", len(row.prompt), len(tokens)
                    )
                )
                self.kv_stats()  # the peaks, before the release
                self._finish([row], leave=True)
                self._relayout(len(self._batch))
                return True
        return False

    def has_work(self) -> bool:
        """Rows running or queued (or cancellations not yet reported)."""
        return bool(self._queue or self._pending or self._batch)

    def kv_stats(self) -> dict[str, int]:
        """K/V of both models, in positions and bytes.

        ``capacity_tokens``: positions the budget allows (rows x ``slot_tokens``);
        ``allocated_bytes``: what the cohorts' buffers occupy (rows x capacity, the headroom
        and any unused rows included); ``held_bytes``: the positions rows hold; the peaks are
        the most of each at any time (allocated: at every resize; held: before every release).
        """
        per_token = sum(self._token_bytes)
        held = sum(r.length for r in self._batch) * per_token
        self._peak_held = max(self._peak_held, held)
        return {
            "capacity_tokens": self.batch_size * self.slot_tokens,
            "slot_tokens": self.slot_tokens,
            "allocated_bytes": self.layout.allocated_tokens() * per_token,
            "held_bytes": held,
            "peak_allocated_bytes": self.layout.peak_tokens * per_token,
            "peak_held_bytes": self._peak_held,
            "cohorts": len(self.layout.cohorts),
            "growths": self.layout.growths,
            "merges": self.layout.merges,
        }

    @torch.inference_mode()
    def step(self) -> StepOutput:
        """Admit queued requests that fit, then run one decoding step for every row."""
        out = StepOutput(completions=self._pending)
        self._pending = []
        batch = self._batch
        admitted: list[Row] = []
        if self._admitting(batch):
            while self._queue and len(batch) + len(admitted) < self.batch_size:
                request = self._queue.popleft()
                problem = self._reject(request)
                row = self._new_row(request) if problem is None else None
                if row is None:
                    out.completions.append(problem or self._invalid(request))
                    continue
                row.slot = len(batch) + len(admitted)  # until the batch is reordered
                self._kinds[row.kind] += 1
                admitted.append(row)
        if not batch and not admitted:
            return out
        ids = self._decode_step(batch) if batch else None
        if admitted:
            ids = self._admit(admitted, ids, len(batch))
        assert ids is not None
        # the one host sync of the step
        drawn = ids.tolist()
        st, n = self.state, len(drawn)
        st.last[:n] = ids
        st.steps[:n] += st.alive[:n]
        finished = self._advance([r for r in batch if not r.done] + admitted, drawn, out)
        if finished:
            # Held K/V only grows between releases, so its peak is taken just before one.
            self.kv_stats()
            self._finish(finished, leave=self.continuous)
        if finished or admitted:
            self._relayout(len(batch) + len(admitted))
        return out

    # ---- one step -----------------------------------------------------------------------
    def _admitting(self, batch: list[Row]) -> bool:
        """Whether this step takes queued prompts into free rows."""
        if not batch:
            return True
        if not self.continuous:
            return False
        free = self.batch_size - len(batch)
        return free >= self.admit_min or 0 < len(self._queue) <= free

    def _decode_step(self, batch: list[Row]) -> torch.Tensor:
        """Feed every row its last token; (width,) ids drawn for batch rows 0 .. width-1.

        On CUDA the step (forwards, rule and draw) is a replayed graph, padded to a width and
        a span bucket over the one fixed cohort; elsewhere the same function runs directly on
        the exact sizes, one segment per cohort.
        """
        self.layout.reserve_step()
        if self.cuda_graphs:
            if self._graphs is None:
                self._graphs = graphs.StepGraphs()
            width = graphs.width_bucket(len(batch), self.batch_size)
            span = graphs.span_bucket(max(r.length for r in batch) + 1, self.slot_tokens)
            cohort = self.layout.cohorts[0].id
            kinds = sorted(self._kinds)
            setting = kinds[0] if len(kinds) == 1 else ("mixed", any(k[2] for k in kinds))
            ids = self._graphs.run(
                (width, span, setting),
                lambda: self._draw(self._decode(width, [(cohort, 0, width, span, None)])),
            )
        else:
            width = len(batch)
            cuts = [
                (c, start, n, longest + 1, longest if longest == shortest else None)
                for c, start, n, longest, shortest in self.layout.segments()
            ]
            ids = self._draw(self._decode(width, cuts))
        self.state.pos[:width] += self.state.alive[:width]
        for r in batch:
            if not r.done:
                r.length += 1
        return ids

    def _decode(
        self, width: int, cuts: list[tuple[int, int, int, int, int | None]]
    ) -> list[torch.Tensor]:
        """Feed batch rows 0 .. width-1 their last token; (width, V) logits per model.

        ``cuts``: (cohort, first row, rows, span, uniform position or None) per segment.
        """
        out = []
        segments: dict[torch.device, list[attention.Segment]] = {}
        for i, dev in enumerate(self.devices):
            positions = self.state.pos[:width].to(dev, non_blocking=True)
            if dev not in segments:  # models on one device share the segments and masks
                segments[dev] = [
                    attention.Segment(c, start, positions[start : start + n], span, same)
                    for c, start, n, span, same in cuts
                ]
            state = attention.Decode(self.caches[i], segments[dev])
            tokens = self.state.last[:width].to(dev, non_blocking=True).unsqueeze(1)
            out.append(self._forward(i, tokens, positions.unsqueeze(1), state))
        return out

    def _admit(self, admitted: list[Row], decoded: torch.Tensor | None, n: int) -> torch.Tensor:
        """Prefill the admitted rows (at batch rows ``n ..``) and draw their first tokens;
        ids merged with ``decoded``."""
        self.layout.place(admitted)
        order: list[Row] = []
        prefilled: list[list[torch.Tensor]] = []  # per group, per model: (k, V)
        for group in prefill.groups(admitted, self.prefill_chunk):
            order += group
            if len(group[0].prompt) > self.prefill_chunk:
                logits = prefill.prefill_long(
                    self._forward, self.caches, self.devices, group[0], self.prefill_chunk
                )
            else:
                logits = prefill.prefill_batch(
                    self._forward, self.caches, self.devices, group, self.pad_id
                )
            prefilled.append(logits)
        self.state.activate(order)
        index = upload([r.slot for r in order], self.device)
        logits = [torch.cat([p[i] for p in prefilled]) for i in range(len(self.models))]
        first = self._draw(logits, index)
        width = max(n + len(admitted), decoded.shape[0] if decoded is not None else 0)
        ids = first.new_zeros(width)
        if decoded is not None:
            ids[: decoded.shape[0]] = decoded
        return ids.index_copy_(0, index, first)

    def _forward(self, i: int, input_ids: torch.Tensor, positions: torch.Tensor, state: Any):
        model = self.models[i]
        kwargs: dict[str, Any] = {}
        if self._logits_to_keep[i]:
            kwargs["logits_to_keep"] = 1
        with attention.slot_attention(model), gemm.rows_first(self._linears[i]):
            out = model(
                input_ids=input_ids,
                position_ids=positions,
                use_cache=False,
                codit_slots=state,
                **kwargs,
            )
        return out.logits[:, -1, : self.vocab_size].to(self.device, non_blocking=True)

    def _draw(self, logits: list[torch.Tensor], slots: torch.Tensor | None = None) -> torch.Tensor:
        """Score with the rule and sample one token for each of the B rows of ``logits``.

        Row ``i`` is batch row ``i``, or batch row ``slots[i]`` when ``slots`` (B,) is given.
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
        st = self.state
        f = st.floats[:, rows]
        if len(kinds) != 1:
            scores = row_scores(self.decoding.rule, post, base, f[2], f[3])
        return sample(
            scores,
            f[0],
            st.top_k[rows],
            f[1],
            st.seeds[rows],
            st.steps[rows],
            filtering=any(k[2] for k in kinds),
        )

    def _advance(self, rows: list[Row], drawn: list[int], out: StepOutput) -> list[Row]:
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

    def _finish(self, rows: list[Row], leave: bool) -> None:
        """Finished rows stop drawing; they leave the batch now (``leave``) or, in a static
        batch, when every row of it is done."""
        self.state.stop([r.slot for r in rows])
        for r in rows:
            r.done = True
            self._kinds[r.kind] -= 1
            if not self._kinds[r.kind]:
                del self._kinds[r.kind]
        everyone = self.layout.order()
        if leave:
            self.layout.remove(rows)
        elif all(r.done for r in everyone):
            self.layout.remove(everyone)

    def _relayout(self, before: int) -> None:
        """Reorder the batch to the layout's order (each cohort's rows contiguous)."""
        order = self.layout.order()
        self.state.permute([r.slot for r in order], before)
        for i, r in enumerate(order):
            r.slot = i
        self._batch = order

    # ---- rows ---------------------------------------------------------------------------
    def _slot_tokens(self, budget: int | float | None) -> int:
        """Positions per row that the budget allows (and the context needs, at most)."""
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

    def _new_row(self, request: Request) -> Row | None:
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
        return Row(request.key, list(request.prompt_ids), limit, config, watch)

    def _invalid(self, request: Request) -> Completion:
        n = len(request.prompt_ids)
        try:
            if request.settings:
                request.settings.resolve(self.decoding)
            reason = "the request's settings are invalid"
        except CoditError as err:
            reason = f"the request's settings are invalid: {err}"
        return Completion(request.key, "", [], "error", n, 0, error=reason)

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
