"""The ``local`` backend: a Hugging Face model run by codit's own engine, in direct mode
(``local:MODEL``), or with its base model in CoDIT mode (``codit:INSTRUCT+BASE``).

It wraps ``codit.generation.texts.LocalGenerator`` and loads the model on the first call, so
building a backend from a spec costs nothing. Conversations go to the engine in batches of
``batch_size``; each finished batch is written to the response cache before the next starts, so
an interrupted run loses at most one batch. It has no structured output: a request's
``json_schema`` is ignored (it still keys the cache) and the prompt alone asks for the shape.
"""

from __future__ import annotations

from typing import Any

from codit.backends.base import GenerationParams, Message, TextResult
from codit.backends.cache import ResponseCache, cache_key
from codit.errors import BackendError


class LocalBackend:
    """Direct-mode generation with a local model.

    Args:
        model: a model directory, a hub id already in the local cache, or a built-in tiny model
            name such as ``"tiny-instruct"``.
        device: where to run ("auto", "cpu", "cuda", ...).
        dtype: the weights' dtype ("auto", "float32", "bfloat16", ...).
        batch_size: conversations per engine call.
        cache: where finished calls are kept, or None.
        base: the instruct model's base; given, responses are decoded with CoDIT (kind ``codit``).
    """

    kind = "local"

    def __init__(
        self,
        model: str,
        *,
        device: str = "auto",
        dtype: str = "auto",
        batch_size: int = 8,
        cache: ResponseCache | None = None,
        base: str | None = None,
    ):
        self.kind = "codit" if base else "local"
        self.model = f"{model}+{base}" if base else model
        self.instruct = model
        self.base = base
        self.device = device
        self.dtype = dtype
        self.batch_size = batch_size
        self.cache = cache
        self._generator: Any = None

    def _engine(self) -> Any:
        if self._generator is None:
            try:
                from codit.generation.texts import LocalGenerator
            except ImportError as err:
                raise BackendError(f"codit's local engine cannot be imported: {err}") from None
            self._generator = LocalGenerator(
                self.instruct, self.base, device=self.device, dtype=self.dtype
            )
        return self._generator

    def generate(
        self, conversations: list[list[Message]], params: GenerationParams
    ) -> list[TextResult]:
        """Complete every conversation with the local model; cached ones are not rerun."""
        keys = [cache_key(self.kind, self.model, params, c) for c in conversations]
        results: list[TextResult | None] = [
            self.cache.get(k) if self.cache is not None else None for k in keys
        ]
        todo = [i for i, r in enumerate(results) if r is None]
        for start in range(0, len(todo), self.batch_size):
            batch = todo[start : start + self.batch_size]
            outputs = self._engine().generate(
                [conversations[i] for i in batch],
                mode="codit" if self.base else "direct",
                max_new_tokens=params.max_new_tokens,
                temperature=params.temperature,
                top_p=params.top_p,
                top_k=params.top_k,
                seed=params.seed,
                batch_size=self.batch_size,
            )
            for i, out in zip(batch, outputs, strict=True):
                result = TextResult(
                    text=out.text,
                    finish_reason=out.finish_reason,
                    prompt_tokens=out.prompt_tokens,
                    completion_tokens=out.completion_tokens,
                    error=out.error,
                )
                if self.cache is not None:
                    self.cache.put(keys[i], self.kind, self.model, result)
                results[i] = result
        return [r for r in results if r is not None]
