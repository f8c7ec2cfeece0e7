"""Conversations in, texts out: codit's engine as a library call for prompted work.

``LocalGenerator`` loads a model (and, for CoDIT, its base) once and answers batches of
conversations in input order. It is what the ``local:`` text backend and the evaluation
commands use; files, ids and resumption are the business of ``generation.run``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from codit.decoding.config import DecodingConfig
from codit.errors import ConfigError


@dataclass(frozen=True)
class GeneratedText:
    """One answer."""

    text: str
    finish_reason: str  # "stop" | "length" | "error"
    prompt_tokens: int
    completion_tokens: int
    error: str | None = None


class LocalGenerator:
    """A loaded instruct model (and optional base) that answers conversations.

    Args:
        instruct: instruct model: built-in name, local directory or hub id.
        base: its base model; needed for ``mode="codit"``.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        dtype: ``auto`` (bf16 on CUDA, fp32 on CPU) or a dtype name.
        trust_remote_code: allow code shipped with the models.
    """

    def __init__(
        self,
        instruct: str = "tiny-instruct",
        base: str | None = None,
        device: str = "auto",
        dtype: str = "auto",
        trust_remote_code: bool = False,
        base_device: str | None = None,
    ):
        from codit.models.pair import load_pair

        self.pair = load_pair(instruct, base, device, base_device, dtype, trust_remote_code)

    def generate(
        self,
        conversations: list[list[dict[str, str]]],
        mode: str = "direct",
        *,
        batch_size: int = 8,
        chat_template_kwargs: dict[str, Any] | None = None,
        continuous: bool = True,
        **decoding: Any,
    ) -> list[GeneratedText]:
        """Answer each conversation (a list of ``{"role", "content"}`` ending with a user turn).

        Keyword arguments are ``DecodingConfig`` fields (``temperature``, ``max_new_tokens``,
        ``alpha``, ``beta``, ``top_p``, ``top_k``, ``seed``, ``stop``, ``rule``); temperature
        defaults to 0 (greedy) here.
        """
        from codit.decoding.engine import PairEngine, Request
        from codit.models.chat import prompt_ids

        decoding.setdefault("temperature", 0.0)
        config = DecodingConfig(mode=mode, **decoding)
        if config.contrastive and self.pair.base is None:
            raise ConfigError("mode='codit' needs a base model: LocalGenerator(instruct, base=...)")
        pair = self.pair
        engine = PairEngine(
            pair.instruct.model,
            pair.base.model if config.contrastive and pair.base else None,
            pair.tokenizer,
            config,
            pair.stop_ids,
            pair.vocab_size,
            batch_size,
            continuous,
        )
        requests = [
            Request(str(i), prompt_ids(pair.tokenizer, conv, chat_template_kwargs))
            for i, conv in enumerate(conversations)
        ]
        results: dict[str, GeneratedText] = {}
        for done in engine.generate(requests):
            results[done.key] = GeneratedText(
                done.text,
                done.finish_reason,
                done.prompt_tokens,
                done.completion_tokens,
                done.error,
            )
        return [results[str(i)] for i in range(len(conversations))]


def generate_texts(
    conversations: list[list[dict[str, str]]],
    instruct: str = "tiny-instruct",
    base: str | None = None,
    mode: str = "direct",
    device: str = "auto",
    dtype: str = "auto",
    **kwargs: Any,
) -> list[GeneratedText]:
    """One-shot convenience: load the model(s), answer the conversations, return the texts."""
    return LocalGenerator(instruct, base, device, dtype).generate(conversations, mode, **kwargs)
