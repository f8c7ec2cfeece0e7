"""Calling LLMs from a pipeline: one metered backend per role, and asking with bounded re-asks.

A pipeline names its roles ("strong", "target", "judge", ...) and a backend spec for each;
``open_roles`` opens one backend per distinct spec (roles with the same spec share it, and its
cache) and wraps each role in a cost meter. ``ask`` sends a batch of conversations and parses
every reply; a reply that does not parse is asked again, at most ``retries`` more times, with
another seed and a temperature of at least ``reask_temperature`` (asking a greedy model the same
question again would only repeat the same reply). Every reply read is kept for the error files.

A request the backend could not complete (the prompt is too long, the server rejected it) is
not asked again; a failure of the backend itself (``BackendError``) stops the run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from codit.backends.base import GenerationParams, Message, TextBackend
from codit.backends.cost import Metered
from codit.backends.spec import BackendConfig, open_backend
from codit.pipelines.replies import ParseError

T = TypeVar("T")


def open_roles(
    specs: dict[str, str],
    config: BackendConfig,
    ready: dict[str, TextBackend] | None = None,
) -> dict[str, Metered]:
    """A metered backend for each role; roles naming the same spec share one backend.

    Args:
        specs: role -> backend spec (``local:...`` or ``openai:MODEL@URL``).
        config: how to reach the backends (with the response cache).
        ready: role -> an already built backend, used instead of opening its spec (tests).
    """
    opened: dict[str, TextBackend] = {}
    roles = {}
    for role, spec in specs.items():
        if ready and role in ready:
            roles[role] = Metered(ready[role])
            continue
        if spec not in opened:
            opened[spec] = open_backend(spec, config)
        roles[role] = Metered(opened[spec])
    return roles


@dataclass(frozen=True)
class Answer(Generic[T]):
    """The outcome of asking one question.

    Attributes:
        value: what the parser read, or None.
        replies: every reply read, first to last (the raw output for error files).
        error: why there is no value, or None.
        unparsable: how many of the replies could not be parsed.
    """

    value: T | None
    replies: tuple[str, ...]
    error: str | None = None
    unparsable: int = 0


def ask(
    backend: TextBackend,
    conversations: list[list[Message]],
    params: GenerationParams,
    parse: Callable[[str, int], T],
    retries: int,
    reask_temperature: float,
) -> list[Answer[T]]:
    """Ask every conversation and parse each reply; re-ask the unparsable ones.

    Args:
        backend: who answers.
        conversations: one conversation per question.
        params: how to sample the first reply; re-asks change the seed and raise the
            temperature to at least ``reask_temperature``.
        parse: ``(reply, index) -> value``, raising ``ParseError`` on a reply it cannot read.
        retries: the most re-asks per question.
        reask_temperature: the lowest sampling temperature of a re-ask.

    Returns:
        One ``Answer`` per conversation, in order.
    """
    replies: list[list[str]] = [[] for _ in conversations]
    values: list[T | None] = [None] * len(conversations)
    errors: list[str | None] = [None] * len(conversations)
    bad = [0] * len(conversations)
    pending = list(range(len(conversations)))
    for attempt in range(retries + 1):
        if not pending:
            break
        p = params
        if attempt:
            temperature = max(params.temperature, reask_temperature)
            p = dataclasses.replace(params, seed=params.seed + attempt, temperature=temperature)
        results = backend.generate([conversations[i] for i in pending], p)
        still = []
        for i, result in zip(pending, results, strict=True):
            if result.error is not None:
                errors[i] = result.error
                continue
            replies[i].append(result.text)
            try:
                values[i] = parse(result.text, i)
                errors[i] = None
            except ParseError as err:
                bad[i] += 1
                errors[i] = f"unparsable after {len(replies[i])} replies: {err}"
                still.append(i)
        pending = still
    return [
        Answer(values[i], tuple(replies[i]), None if values[i] is not None else errors[i], bad[i])
        for i in range(len(conversations))
    ]


def user(content: str) -> list[Message]:
    """A one-turn conversation."""
    return [{"role": "user", "content": content}]
