"""The text-backend protocol: message lists in, ``TextResult`` out.

A backend turns a batch of conversations into one ``TextResult`` per conversation, in order.
Failures that concern one request (the prompt is too long, the server sent back nonsense) come
back as a result with ``error`` set, so that one bad record never stops a run; failures that
concern the backend itself (the server is down, the rate limit never lifts, the key is refused)
raise ``BackendError`` after the retries, and everything finished before is already cached.

This module holds no I/O; the backends live in ``openai.py`` and ``local.py``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Protocol

from codit.settings import check, setting

# One chat message, as the OpenAI API and TRL's conversational format write it:
# {"role": "user", "content": "..."}.
Message = dict[str, str]


@dataclass(frozen=True)
class GenerationParams:
    """How to sample; part of every cache key."""

    max_new_tokens: int = setting(512, "maximum tokens per completion", ge=1)
    temperature: float = setting(0.0, "sampling temperature; 0 is greedy", ge=0)
    top_p: float = setting(1.0, "nucleus sampling mass", gt=0, le=1)
    top_k: int = setting(0, "top-k sampling; 0 disables it", ge=0)
    seed: int = setting(0, "sampling seed")
    json_schema: dict[str, Any] | None = setting(
        None,
        "a JSON schema the reply must follow, sent as structured output where the backend "
        "supports it (its ``title`` names it); others ignore it and answer in text",
    )

    def __post_init__(self) -> None:
        check(self)

    def to_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        if values["json_schema"] is None:
            del values["json_schema"]  # so plain-text calls keep the cache keys they always had
        return values


@dataclass(frozen=True)
class TextResult:
    """One completion.

    Attributes:
        text: the generated text ("" when ``error`` is set).
        finish_reason: "stop", "length", or "error".
        prompt_tokens: tokens in the prompt, as the backend counted them (0 if unknown).
        completion_tokens: tokens generated (0 if unknown).
        cached: whether the result came from the response cache rather than a new call.
        error: why this request failed, or None.
    """

    text: str
    finish_reason: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached: bool = False
    error: str | None = None


class TextBackend(Protocol):
    """Anything that completes conversations: an OpenAI-compatible server, a local model."""

    kind: str
    model: str

    def generate(
        self, conversations: list[list[Message]], params: GenerationParams
    ) -> list[TextResult]:
        """Complete each conversation; returns one result per conversation, in order.

        Raises:
            BackendError: the backend itself failed (after retries, where they apply).
        """
        ...


def failed(reason: str) -> TextResult:
    """The result of a request that failed for its own reasons."""
    return TextResult(text="", finish_reason="error", error=reason)
