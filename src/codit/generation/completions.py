"""Completions from a loaded pair: the engine for a run's settings and the chat rendering.

What a local run (``generation.run``) and a Ray worker (``distributed.ray_generate``) share: load
the pair a config names, build its ``PairEngine``, and turn ``(key, conversation)`` pairs into
completions through the chat template. No files are read or written here; the run writes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from codit.decoding.engine import Completion, Request
from codit.generation.config import GenerateConfig
from codit.io import signals


def local_completions(
    config: GenerateConfig,
    conversations: Iterable[tuple[str, list[dict[str, str]]]],
    record_models: Callable[[dict[str, Any]], None],
) -> Iterator[Completion]:
    """Load the pair in this process and decode the (record id, conversation) pairs with it."""
    from codit.models.chat import require_chat_template

    pair = load_run_pair(config)
    engine = pair_engine(pair, config)
    stats = engine.kv_stats()  # how many K/V tokens the budget holds, for the manifest
    record_models({**pair.info(), "kv_cache_tokens": stats["capacity_tokens"]})
    require_chat_template(pair.tokenizer)
    return complete(
        engine,
        pair.tokenizer,
        signals.until_stopped(conversations),
        config.chat_template_kwargs,
    )


def complete(
    engine: Any,
    tokenizer: Any,
    conversations: Iterable[tuple[str, list[dict[str, str]]]],
    template_kwargs: dict[str, Any],
) -> Iterator[Completion]:
    """Render each (key, conversation) with the chat template and decode it with ``engine``.

    Yields one completion per key as soon as it finishes; a conversation that the chat
    template rejects comes back as an error completion, and the others go on.
    """
    from codit.models.chat import prompt_ids

    rejected: list[Completion] = []

    def requests() -> Iterator[Request]:
        for key, messages in conversations:
            try:
                ids = prompt_ids(tokenizer, messages, template_kwargs)
            except Exception as err:  # a template may reject one conversation; record it, go on
                rejected.append(
                    Completion(key, "", [], "error", 0, 0, error=f"the chat template failed: {err}")
                )
                continue
            yield Request(key, ids)

    for done in engine.generate(requests()):
        yield from rejected
        rejected.clear()
        yield done
    yield from rejected


def load_run_pair(config: GenerateConfig) -> Any:
    """The ``ModelPair`` a run's settings name (the instruct model alone in direct mode)."""
    from codit.models.pair import load_pair

    return load_pair(
        config.instruct,
        config.base if config.decoding.contrastive else None,
        config.device,
        config.base_device,
        config.dtype,
        config.trust_remote_code,
        config.device_map,
    )


def pair_engine(pair: Any, config: Any, continuous: bool | None = None) -> Any:
    """The decoding engine for a loaded pair and a run's (or a server's) settings.

    ``config`` carries ``decoding``, ``batch_size`` and ``kv_cache_memory``; ``continuous``
    defaults to its ``continuous_batching``.
    """
    from codit.decoding.engine import PairEngine

    if continuous is None:
        continuous = config.continuous_batching
    return PairEngine(
        pair.instruct.model,
        pair.base.model if pair.base else None,
        pair.tokenizer,
        config.decoding,
        pair.stop_ids,
        pair.vocab_size,
        batch_size=config.batch_size,
        continuous=continuous,
        kv_cache_memory=config.kv_cache_memory,
    )
