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
from dataclasses import dataclass, field
from typing import Any, Protocol

from codit.errors import ConfigError

# One chat message, as the OpenAI API and TRL's conversational format write it:
# {"role": "user", "content": "..."}.
Message = dict[str, str]


@dataclass(frozen=True)
class GenerationParams:
    """How to sample; part of every cache key."""

    max_new_tokens: int = field(default=512, metadata={"help": "maximum tokens per completion"})
    temperature: float = field(default=0.0, metadata={"help": "sampling temperature; 0 is greedy"})
    top_p: float = field(default=1.0, metadata={"help": "nucleus sampling mass, in (0, 1]"})
    top_k: int = field(default=0, metadata={"help": "top-k sampling; 0 disables it"})
    seed: int = field(default=0, metadata={"help": "sampling seed"})
    json_schema: dict[str, Any] | None = field(
        default=None,
        metadata={
            "help": "a JSON schema the reply must follow, sent as structured output where the"
            " backend supports it (its ``title`` names it); others ignore it and answer in text"
        },
    )

    def __post_init__(self) -> None:
        problems = []
        if self.max_new_tokens < 1:
            problems.append(f"--max-new-tokens must be at least 1, not {self.max_new_tokens}")
        if self.temperature < 0:
            problems.append(f"--temperature must be at least 0, not {self.temperature}")
        if not 0 < self.top_p <= 1:
            problems.append(f"--top-p must be in (0, 1], not {self.top_p}")
        if self.top_k < 0:
            problems.append(f"--top-k must be at least 0, not {self.top_k}")
        if problems:
            raise ConfigError(problems)

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
