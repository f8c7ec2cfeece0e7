"""The two-model decoding engine: instruct and base models in lockstep, one process.

Every step feeds the same token ids to both models (each with its own KV cache), scores the
next token with a rule from ``contrastive``, picks it with ``sampling`` and appends it to both
contexts. Rows are left-padded, with attention masks and position ids that make padding
invisible, so a row's tokens do not depend on its neighbours. With ``continuous=True`` a row
that finishes leaves the batch at once and the next queued prompt takes its slot (prefilled in
both models and merged into the running caches), so long responses never hold short ones back.
With ``continuous=False`` the engine batches statically, like ``model.generate``: a batch runs
until its last row finishes, finished rows riding along, and only then takes new prompts.
Only the sampled ids leave the device each step. In ``direct`` mode the base model is never
run and the scores are the instruct model's own log-probabilities.

This module knows nothing of files or records: requests in, completions out.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

from codit.decoding import kvcache
from codit.decoding.config import DecodingConfig
from codit.decoding.contrastive import SCORE_RULES
from codit.decoding.sampling import next_tokens

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Request:
    """One prompt to complete.

    Attributes:
        key: the record's id; also seeds its sampling stream.
        prompt_ids: the prompt's token ids (chat template already applied).
        max_new_tokens: per-row cap; None uses the engine's setting.
    """

    key: str
    prompt_ids: list[int]
    max_new_tokens: int | None = None


@dataclass(frozen=True)
class Completion:
    """A finished row: the response, or why there is none (``error``)."""

    key: str
    text: str
    token_ids: list[int]
    finish_reason: str  # "stop" | "length" | "error"
    prompt_tokens: int
    completion_tokens: int
    error: str | None = None


@dataclass
class _Row:
    key: str
    prompt_tokens: int
    max_new_tokens: int
    generator: torch.Generator | None
    tokens: list[int] = field(default_factory=list)
    finished: bool = False


def row_seed(seed: int, key: str) -> int:
    """A 63-bit seed derived from the run seed and the record id."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{key}".encode()).digest()[:8], "little") >> 1


def context_length(model: Any) -> int | None:
    config = (
        model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    )
    return getattr(config, "max_position_embeddings", None)


class PairEngine:
    """Decodes batches of requests with an instruct model and, in codit mode, its base model.

    Args:
        instruct: the post-trained model (a transformers causal LM, eval mode).
        base: its base model, or None for direct mode.
        tokenizer: the shared tokenizer (decodes responses, checks stop strings).
        decoding: the decoding settings.
        stop_ids: token ids that end a response (the instruct model's EOS ids).
        vocab_size: how many logits to score (the real vocabulary, ``len(tokenizer)``).
        batch_size: most rows decoded at once.
        continuous: finished rows leave and queued prompts take their slots at once; else
            static batching (finished rows stay until the whole batch is done).
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
    ):
        if decoding.contrastive and base is None:
            raise ValueError("codit mode needs a base model")
        self.models = [instruct] + ([base] if decoding.contrastive else [])
        self.devices = [next(m.parameters()).device for m in self.models]
        self.tokenizer = tokenizer
        self.decoding = decoding
        self._stop_set = set(stop_ids)
        self.vocab_size = vocab_size
        self.batch_size = batch_size
        self.continuous = continuous
        self.score = SCORE_RULES[decoding.rule]
        # Direct generation is the rule with alpha = beta = 0: the instruct model's own distribution.
        self.alpha, self.beta = (
            (decoding.alpha, decoding.beta) if decoding.contrastive else (0.0, 0.0)
        )
        limits = [c for c in (context_length(m) for m in self.models) if c]
        self.max_context = min(limits) if limits else None
        self._logits_to_keep = [
            "logits_to_keep" in inspect.signature(m.forward).parameters for m in self.models
        ]
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stop_ids[0]

    # ---- public -------------------------------------------------------------------------
    def generate(self, requests: Iterable[Request]) -> Iterator[Completion]:
        """Complete every request; yields each completion as soon as its row finishes.

        Requests are pulled from the iterable only when a slot is free, so a huge input
        never sits in memory as token ids all at once.
        """
        pending = iter(requests)
        exhausted = False
        state = _Batch()
        while True:
            admitted: list[Request] = []
            if self.continuous or not state.rows:
                while not exhausted and len(state.rows) + len(admitted) < self.batch_size:
                    request = next(pending, None)
                    if request is None:
                        exhausted = True
                    elif (problem := self._reject(request)) is not None:
                        yield problem
                    else:
                        admitted.append(request)
            if not state.rows and not admitted:
                return
            yield from self._step(state, admitted)

    # ---- one step -----------------------------------------------------------------------
    @torch.inference_mode()
    def _step(self, state: _Batch, admitted: list[Request]) -> list[Completion]:
        logits: list[list[torch.Tensor]] = [[] for _ in self.models]
        if state.rows:
            for i, part in enumerate(self._decode(state)):
                logits[i].append(part)
        if admitted:
            for i, part in enumerate(self._admit(state, admitted)):
                logits[i].append(part)
        post = torch.cat(logits[0]) if len(logits[0]) > 1 else logits[0][0]
        base = None
        if len(self.models) > 1:
            base = torch.cat(logits[1]) if len(logits[1]) > 1 else logits[1][0]
            base = base.to(post.device, non_blocking=True)
        d = self.decoding
        scores = self.score(post, base, self.alpha, self.beta)
        gens = None
        if d.temperature > 0:
            gens = [r.generator for r in state.rows if r.generator is not None]
        ids = next_tokens(scores, d.temperature, d.top_k, d.top_p, gens)
        state.last = ids
        return self._finish_rows(state, ids.tolist())

    def _forward(
        self,
        i: int,
        input_ids: torch.Tensor,
        mask: torch.Tensor,
        positions: torch.Tensor,
        cache: Any,
    ) -> torch.Tensor:
        dev = self.devices[i]
        kwargs: dict[str, Any] = {}
        if self._logits_to_keep[i]:
            kwargs["logits_to_keep"] = 1
        out = self.models[i](
            input_ids=input_ids.to(dev),
            attention_mask=mask.to(dev),
            position_ids=positions.to(dev),
            past_key_values=cache,
            use_cache=True,
            **kwargs,
        )
        return out.logits[:, -1, : self.vocab_size]

    def _decode(self, state: _Batch) -> list[torch.Tensor]:
        """Feed every running row its last token; returns (B, V) logits per model."""
        ones = state.mask.new_ones(state.mask.shape[0], 1)
        state.mask = torch.cat([state.mask, ones], dim=1)
        positions = state.lengths.unsqueeze(1)
        state.lengths = state.lengths + 1
        tokens = state.last.unsqueeze(1)
        return [
            self._forward(i, tokens, state.mask, positions, c) for i, c in enumerate(state.caches)
        ]

    def _admit(self, state: _Batch, requests: list[Request]) -> list[torch.Tensor]:
        """Prefill new prompts in both models and merge them into the running batch."""
        from transformers import DynamicCache

        dev = self.devices[0]
        width = max(len(r.prompt_ids) for r in requests)
        ids = torch.full((len(requests), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(requests), width), dtype=torch.long)
        for j, r in enumerate(requests):
            ids[j, width - len(r.prompt_ids) :] = torch.tensor(r.prompt_ids)
            mask[j, width - len(r.prompt_ids) :] = 1
        ids, mask = ids.to(dev), mask.to(dev)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        caches = [DynamicCache() for _ in self.models]
        logits = [self._forward(i, ids, mask, positions, c) for i, c in enumerate(caches)]
        lengths = mask.sum(-1)
        rows = [self._new_row(r) for r in requests]
        if not state.rows:
            if self.continuous and not all(kvcache.supports_merging(c) for c in caches):
                log.info("this model's cache cannot be merged; refilling only empty batches")
                self.continuous = False
            state.caches, state.mask, state.lengths, state.rows = caches, mask, lengths, rows
            return logits
        for old, new in zip(state.caches, caches, strict=True):
            kvcache.merge(old, new)
        t_old, t_new = state.mask.shape[1], width
        total = max(t_old, t_new)
        state.mask = torch.cat(
            [
                torch.nn.functional.pad(state.mask, (total - t_old, 0)),
                torch.nn.functional.pad(mask, (total - t_new, 0)),
            ]
        )
        state.lengths = torch.cat([state.lengths, lengths])
        state.rows.extend(rows)
        return logits

    def _new_row(self, request: Request) -> _Row:
        limit = request.max_new_tokens or self.decoding.max_new_tokens
        if self.max_context:
            limit = min(limit, self.max_context - len(request.prompt_ids))
        generator = None
        if self.decoding.temperature > 0:
            generator = torch.Generator(device=self.devices[0])
            generator.manual_seed(row_seed(self.decoding.seed, request.key))
        return _Row(request.key, len(request.prompt_ids), limit, generator)

    def _finish_rows(self, state: _Batch, ids: list[int]) -> list[Completion]:
        done: list[Completion] = []
        keep: list[int] = []
        for j, (row, token) in enumerate(zip(state.rows, ids, strict=True)):
            if row.finished:  # static batching: a finished row rides along, ignored
                continue
            row.tokens.append(token)
            reason = None
            text = None
            if token in self._stop_set:
                reason = "stop"
            elif self.decoding.stop:
                text = self._text(row.tokens)
                cut = min((text.find(s) for s in self.decoding.stop if s in text), default=-1)
                if cut >= 0:
                    reason, text = "stop", text[:cut]
            if reason is None and len(row.tokens) >= row.max_new_tokens:
                reason = "length"
            if reason is None:
                keep.append(j)
                continue
            row.finished = True
            if text is None:
                body = row.tokens[:-1] if reason == "stop" else row.tokens
                text = self._text(body)
            done.append(
                Completion(
                    row.key, text, list(row.tokens), reason, row.prompt_tokens, len(row.tokens)
                )
            )
        if done and (self.continuous or not keep):
            self._keep(state, keep)
        return done

    def _keep(self, state: _Batch, keep: list[int]) -> None:
        if not keep:
            state.clear()
            return
        index = torch.tensor(keep, device=state.mask.device)
        for cache in state.caches:
            kvcache.select_rows(
                cache, index.to(cache.layers[0].keys.device) if cache.layers else index
            )
        state.rows = [state.rows[j] for j in keep]
        state.mask = state.mask[index]
        state.lengths = state.lengths[index]
        state.last = state.last[index]
        # Columns that only finished rows used are padding for everyone now.
        used = state.mask.any(dim=0)
        first = int(used.int().argmax())
        if first > 0 and all(kvcache.supports_merging(c) for c in state.caches):
            for cache in state.caches:
                kvcache.trim_left(cache, first)
            state.mask = state.mask[:, first:]

    def _text(self, tokens: list[int]) -> str:
        return self.tokenizer.decode(tokens, skip_special_tokens=True)

    def _reject(self, request: Request) -> Completion | None:
        n = len(request.prompt_ids)
        reason = None
        if n == 0:
            reason = "the prompt has no tokens"
        elif self.max_context and n >= self.max_context:
            reason = f"the prompt has {n} tokens but the model's context holds {self.max_context}"
        if reason is None:
            return None
        return Completion(request.key, "", [], "error", n, 0, error=reason)


@dataclass
class _Batch:
    """The running rows and their shared mask/positions; one KV cache per model."""

    rows: list[_Row] = field(default_factory=list)
    caches: list[Any] = field(default_factory=list)
    mask: torch.Tensor = field(default_factory=lambda: torch.zeros(0, 0, dtype=torch.long))
    lengths: torch.Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.long))
    last: torch.Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.long))

    def clear(self) -> None:
        self.rows, self.caches = [], []
        self.mask = self.mask[:0, :0]
        self.lengths = self.lengths[:0]
        self.last = self.last[:0]
