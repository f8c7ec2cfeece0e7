"""The ``openai`` backend: any OpenAI-compatible chat server (vLLM, SGLang, Ollama, hosted APIs).

Requests go through the official ``openai`` client (the ``api`` extra), with the client's own
retries switched off so that codit's policy applies everywhere:

* bounded concurrency: at most ``concurrency`` requests in flight, from a thread pool;
* a per-request timeout;
* retries with exponential backoff and jitter on 429, 408/409, 5xx, timeouts, dropped
  connections and malformed replies, honouring ``Retry-After``;
* after the last retry, a rate limit raises ``RateLimited`` and an unreachable or failing server
  raises ``BackendError``: the run stops, and every call finished so far is in the cache for the
  rerun. A request the server rejects for its own sake (400, the prompt is too long) or that only
  ever gets malformed replies comes back as a ``TextResult`` with ``error`` set instead;
* the API key is read from the environment variable named by ``api_key_env`` and is never logged
  or written; a local server that needs none gets a placeholder;
* a request whose ``GenerationParams.json_schema`` is set asks for structured output
  (``response_format={"type": "json_schema", ...}``); a server that rejects it (HTTP 400, 422
  or 501) is asked again in plain text, and once plain text works the backend stops asking for
  structured output (the callers' prompts describe the shape in words, and their parsers read
  both). ``counters`` tallies HTTP requests, retries and such fallbacks for cost reports.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import random
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from codit.backends.base import GenerationParams, Message, TextResult, failed
from codit.backends.cache import ResponseCache, cache_key
from codit.errors import BackendError, ContextTooLong, RateLimited, require

log = logging.getLogger(__name__)

_CONTEXT_HINTS = (
    "context length",
    "context_length",
    "maximum context",
    "too many tokens",
    "too long",
)

# Statuses with which servers refuse a response_format they do not support.
_SCHEMA_REFUSALS = (400, 422, 501)


class _Retry(Exception):
    """A failure worth another try; ``final`` is what to raise or record when tries run out."""

    def __init__(self, final: BackendError, retry_after: float | None = None, fatal: bool = True):
        super().__init__(str(final))
        self.final = final
        self.retry_after = retry_after
        self.fatal = fatal  # False: record on the item instead of stopping the run


class _Stopped(Exception):
    """Another request failed for good; this one is not sent."""


class OpenAIBackend:
    """Chat completions from an OpenAI-compatible server.

    Args:
        model: the model name the server knows, e.g. ``"qwen3-8b"``.
        base_url: the server's ``/v1`` address; None means the OpenAI API.
        api_key_env: the environment variable holding the API key.
        concurrency: the most requests in flight at once.
        timeout: seconds to wait for one reply.
        max_retries: further tries after a retryable failure.
        retry_delay: the first backoff in seconds; it doubles with each retry, with jitter.
        max_retry_delay: the longest single wait between tries.
        cache: where finished calls are kept, or None.
        structured_output: send ``json_schema`` as structured output when a request has one.
    """

    kind = "openai"

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        *,
        api_key_env: str = "OPENAI_API_KEY",
        concurrency: int = 8,
        timeout: float = 120.0,
        max_retries: int = 5,
        retry_delay: float = 1.0,
        max_retry_delay: float = 60.0,
        cache: ResponseCache | None = None,
        structured_output: bool = True,
    ):
        require("openai", "api")
        import openai

        self.model = model
        self.base_url = base_url
        self.api_key_env = api_key_env
        self.concurrency = concurrency
        self.timeout = timeout
        self.max_retries = max_retries
        self.retry_delay = retry_delay
        self.max_retry_delay = max_retry_delay
        self.cache = cache
        self.structured_output = structured_output
        self.counters = {"requests": 0, "retries": 0, "structured_fallbacks": 0}
        self._counters_lock = threading.Lock()
        self._random = random.Random()
        self._client = openai.OpenAI(
            api_key=os.environ.get(api_key_env) or "no-key-set",
            base_url=base_url,
            timeout=timeout,
            max_retries=0,
        )

    def generate(
        self, conversations: list[list[Message]], params: GenerationParams
    ) -> list[TextResult]:
        """Complete every conversation, ``concurrency`` at a time; see the module docstring."""
        stop = threading.Event()
        fatal: list[BackendError] = []

        def work(messages: list[Message]) -> TextResult | None:
            try:
                return self._complete(messages, params, stop)
            except _Stopped:
                return None
            except BackendError as err:
                fatal.append(err)
                stop.set()
                return None

        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            results = list(pool.map(work, conversations))
        if fatal:
            raise fatal[0]
        return [r for r in results if r is not None]  # None only where a fatal error stopped work

    def _complete(
        self, messages: list[Message], params: GenerationParams, stop: threading.Event
    ) -> TextResult:
        key = cache_key(self.kind, self.model, params, messages)
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                return hit
        result = self._with_retries(messages, params, stop)
        if self.cache is not None:
            self.cache.put(key, self.kind, self.model, result)
        return result

    def _with_retries(
        self, messages: list[Message], params: GenerationParams, stop: threading.Event
    ) -> TextResult:
        attempt = 0
        while True:
            if stop.is_set():
                raise _Stopped
            try:
                return self._request(messages, params)
            except _Retry as retry:
                if attempt >= self.max_retries:
                    if retry.fatal:
                        raise retry.final from None
                    return failed(str(retry.final))
                delay = self._backoff(attempt, retry.retry_after)
                attempt += 1
                self._count("retries")
                log.warning("%s; retry %d of %d in %.1f s", retry, attempt, self.max_retries, delay)
                if stop.wait(delay):
                    raise _Stopped from None

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        delay = min(self.max_retry_delay, self.retry_delay * 2**attempt)
        delay = delay / 2 + self._random.uniform(0, delay / 2)  # jitter spreads out the retries
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.max_retry_delay))
        return delay

    def _request(self, messages: list[Message], params: GenerationParams) -> TextResult:
        """One HTTP request; maps every failure to a result, a ``_Retry`` or a ``BackendError``."""
        import openai

        where = self.base_url or "the OpenAI API"
        request: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "max_tokens": params.max_new_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "seed": params.seed,
        }
        if params.top_k:
            request["extra_body"] = {"top_k": params.top_k}  # vLLM and SGLang accept it
        schema = params.json_schema if self.structured_output else None
        if schema is not None:
            request["response_format"] = _response_format(schema)
        self._count("requests")
        try:
            completion = self._client.chat.completions.create(**request)
        except openai.APITimeoutError:
            raise _Retry(
                BackendError(f"{where} did not answer within {self.timeout:g} s")
            ) from None
        except openai.APIConnectionError as err:
            cause = err.__cause__ or err
            raise _Retry(
                BackendError(f"cannot reach {where} ({type(cause).__name__}: {cause})")
            ) from None
        except openai.APIStatusError as err:
            if schema is not None and err.status_code in _SCHEMA_REFUSALS:
                detail = _detail(err).lower()
                if not any(hint in detail for hint in _CONTEXT_HINTS):
                    return self._in_plain_text(messages, params)
            return self._status_failure(err, where)
        except (openai.APIResponseValidationError, ValueError) as err:
            raise _Retry(
                BackendError(f"{where} sent a malformed reply ({err})"), fatal=False
            ) from None
        choices = getattr(completion, "choices", None)
        message = getattr(choices[0], "message", None) if choices else None
        if message is None:
            raise _Retry(BackendError(f"{where} sent a reply without choices"), fatal=False)
        usage = getattr(completion, "usage", None)
        return TextResult(
            text=message.content or "",
            finish_reason=choices[0].finish_reason or "stop",  # type: ignore[index]
            prompt_tokens=getattr(usage, "prompt_tokens", 0) or 0,
            completion_tokens=getattr(usage, "completion_tokens", 0) or 0,
        )

    def _in_plain_text(self, messages: list[Message], params: GenerationParams) -> TextResult:
        """Ask again without structured output; if that works, the schema was what the server
        refused, so later requests go as plain text from the start."""
        self._count("structured_fallbacks")
        result = self._request(messages, dataclasses.replace(params, json_schema=None))
        if result.error is None and self.structured_output:
            self.structured_output = False
            where = self.base_url or "the OpenAI API"
            log.warning("%s refuses structured output; asking in plain text from now on", where)
        return result

    def _count(self, name: str) -> None:
        with self._counters_lock:
            self.counters[name] += 1

    def _status_failure(self, err: Any, where: str) -> TextResult:
        status = err.status_code
        detail = _detail(err)
        if status == 429:
            raise _Retry(
                RateLimited(f"{where} answered 429 (rate limited): {detail}"),
                retry_after=_retry_after(err),
            ) from None
        if status >= 500 or status in (408, 409):
            raise _Retry(BackendError(f"{where} failed with HTTP {status}: {detail}")) from None
        if status in (401, 403):
            raise BackendError(
                f"{where} refused the request (HTTP {status}); put a valid API key in the"
                f" environment variable {self.api_key_env}"
            ) from None
        if status == 404:
            raise BackendError(
                f"{where} has no model {self.model!r} (HTTP 404): {detail}"
            ) from None
        if any(hint in detail.lower() for hint in _CONTEXT_HINTS):
            return failed(
                str(ContextTooLong(f"the prompt does not fit the context window: {detail}"))
            )
        return failed(f"{where} rejected the request (HTTP {status}): {detail}")


def _response_format(schema: dict[str, Any]) -> dict[str, Any]:
    """The ``response_format`` of a structured-output request; the name comes from the title."""
    name = re.sub(r"[^A-Za-z0-9_-]", "_", str(schema.get("title") or "reply"))[:64]
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": False}}


def _detail(err: Any) -> str:
    body = getattr(err, "body", None)
    if isinstance(body, dict):
        message = body.get("message") or body.get("error", {})
        if isinstance(message, dict):
            message = message.get("message")
        if message:
            return str(message)[:300]
    return str(getattr(err, "message", err))[:300]


def _retry_after(err: Any) -> float | None:
    response = getattr(err, "response", None)
    value = response.headers.get("retry-after") if response is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
