"""The OpenAI wire format: request models, their checks, error objects and response bodies.

Requests are validated with pydantic. Every field that ``codit serve`` honours is declared;
any other field is refused with an OpenAI-style error (``{"error": {"message", "type",
"param", "code"}}``) unless it is one that cannot change the output (``IGNORED``) or is sent
with its neutral value (``NEUTRAL``: ``presence_penalty: 0``, ``logprobs: false``, ...), so a
client never gets an answer made without a setting it asked for. CoDIT's own settings ride as
extra body fields: ``mode``, ``alpha``, ``beta`` and ``rule``.

This module knows nothing about models or the engine.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from codit.decoding.config import DecodingConfig

# Fields accepted and ignored: bookkeeping that never changes the generated text.
IGNORED = frozenset(
    {"user", "metadata", "store", "service_tier", "safety_identifier", "prompt_cache_key"}
)
# Fields accepted only with the value that means "off"; None is always accepted.
NEUTRAL: dict[str, tuple[Any, ...]] = {
    "frequency_penalty": (0,),
    "presence_penalty": (0,),
    "repetition_penalty": (1,),
    "logprobs": (False,),
    "top_logprobs": (0,),
    "logit_bias": ({},),
    "tools": ([],),
    "functions": ([],),
    "tool_choice": ("none", "auto"),
    "function_call": ("none", "auto"),
    "parallel_tool_calls": (True, False),
    "response_format": ({"type": "text"},),
    "modalities": (["text"],),
    "min_p": (0,),
    "min_tokens": (0,),
    "ignore_eos": (False,),
    "echo": (False,),
    "best_of": (1,),
    "suffix": ("",),
}
MAX_STOPS = 16


class APIError(Exception):
    """An error to send back as an OpenAI error object with an HTTP status."""

    def __init__(
        self,
        status: int,
        message: str,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TextPart(_Strict):
    type: Literal["text"]
    text: str


class ChatMessage(_Strict):
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart]

    def as_template_message(self) -> dict[str, str]:
        """``{"role", "content"}`` for the chat template (``developer`` is a system turn)."""
        content = (
            self.content if isinstance(self.content, str) else "".join(p.text for p in self.content)
        )
        return {"role": "system" if self.role == "developer" else self.role, "content": content}


class StreamOptions(_Strict):
    include_usage: bool = False


class _Sampled(BaseModel):
    """The fields both endpoints share; unknown extras are checked by ``refuse_unhonoured``."""

    model_config = ConfigDict(extra="allow")

    model: str
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0)
    top_p: float | None = Field(default=None, gt=0, le=1)
    top_k: int | None = Field(default=None, ge=-1)  # -1 (vLLM's "off") and 0 both mean off
    seed: int | None = None
    stop: str | list[str] | None = None
    n: int = Field(default=1, ge=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    mode: Literal["codit", "direct"] | None = None
    alpha: float | None = Field(default=None, ge=0, le=1)
    beta: float | None = Field(default=None, ge=0)
    rule: Literal["codit", "obrien"] | None = None


class ChatRequest(_Sampled):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)


class CompletionRequest(_Sampled):
    prompt: str | list[str] | list[int] | list[list[int]]


def parse(cls: type[_Sampled], data: Any) -> Any:
    """Validate a decoded JSON body as ``cls``, or raise a 400 ``APIError`` naming the field."""
    if not isinstance(data, dict):
        raise APIError(400, "the request body must be a JSON object", code="invalid_body")
    try:
        request = cls.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        param = ".".join(str(p) for p in first["loc"]) or None
        if first["type"] == "missing":
            message = f"'{param}' is a required property"
        else:
            message = f"invalid value for '{param}': {first['msg']}"
        raise APIError(400, message, param=param, code="invalid_value") from None
    refuse_unhonoured(request)
    return request


def refuse_unhonoured(request: BaseModel) -> None:
    """Raise a 400 for any extra field that would change the output."""
    for name, value in (request.model_extra or {}).items():
        if name in IGNORED or value is None or value in NEUTRAL.get(name, ()):
            continue
        what = "is not supported" if name in NEUTRAL else "is not a field codit serve knows"
        raise APIError(
            400,
            f"'{name}' {what}; codit serve refuses it rather than ignore it (see docs/serve.md)",
            param=name,
            code="unsupported_parameter",
        )


@dataclass(frozen=True)
class Sampling:
    """What a request asks of the engine.

    Attributes:
        settings: ``RowSettings`` fields (an absent one takes the server's value).
        max_tokens: the request's token cap, or None for the server's.
        n: samples to draw.
        seed: the request's seed, or None (the server draws a fresh one).
    """

    settings: dict[str, Any]
    max_tokens: int | None
    n: int
    seed: int | None


def sampling(request: Any, server: DecodingConfig, max_tokens_limit: int, max_n: int) -> Sampling:
    """Resolve a request's sampling fields against the server's settings, or raise a 400."""
    max_tokens = request.max_tokens
    other = getattr(request, "max_completion_tokens", None)
    if max_tokens is not None and other is not None and other != max_tokens:
        raise APIError(
            400,
            "max_tokens and max_completion_tokens differ; send one of them",
            param="max_completion_tokens",
        )
    max_tokens = max_tokens or other
    if max_tokens is not None and max_tokens > max_tokens_limit:
        raise APIError(
            400,
            f"max_tokens is {max_tokens} but this server allows at most {max_tokens_limit} "
            "(--max-tokens-limit)",
            param="max_tokens",
        )
    if request.n > max_n:
        raise APIError(400, f"n is {request.n} but this server allows at most {max_n}", param="n")
    settings: dict[str, Any] = {}
    if request.temperature is not None:
        settings["temperature"] = request.temperature
    if request.top_p is not None:
        settings["top_p"] = request.top_p
    if request.top_k is not None:
        settings["top_k"] = max(request.top_k, 0)
    if request.stop is not None:
        stops = [request.stop] if isinstance(request.stop, str) else list(request.stop)
        if len(stops) > MAX_STOPS or any(not s for s in stops):
            raise APIError(400, f"stop takes 1 to {MAX_STOPS} non-empty strings", param="stop")
        settings["stop"] = tuple(stops)
    settings.update(_contrast(request, server))
    return Sampling(settings, max_tokens, request.n, request.seed)


def _contrast(request: Any, server: DecodingConfig) -> dict[str, float]:
    """alpha/beta for the row from ``mode``/``alpha``/``beta``/``rule``."""
    if request.rule is not None and request.rule != server.rule:
        raise APIError(
            400,
            f"this server scores with rule {server.rule!r} for every row and cannot mix in "
            f"{request.rule!r}; start another server with --rule {request.rule}",
            param="rule",
        )
    mode = request.mode or server.mode
    tuned = request.alpha is not None or request.beta is not None
    if mode == "direct":
        if tuned:
            raise APIError(400, "alpha and beta apply to mode 'codit' only", param="alpha")
        return {"alpha": 0.0, "beta": 0.0} if server.contrastive else {}
    if not server.contrastive:
        raise APIError(
            400,
            "this server runs the instruct model alone (--mode direct) and cannot contrast; "
            "send mode 'direct' or start it with --mode codit and a --base model",
            param="mode",
        )
    out = {}
    if request.alpha is not None:
        out["alpha"] = request.alpha
    if request.beta is not None:
        out["beta"] = request.beta
    return out


# ---- response bodies ----------------------------------------------------------------------
def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def envelope(kind: str, rid: str, model: str, choices: list[dict[str, Any]]) -> dict[str, Any]:
    """The fields every response and chunk carries around its ``choices``."""
    return {
        "id": rid,
        "object": kind,
        "created": int(time.time()),
        "model": model,
        "choices": choices,
    }


def chat_choice(index: int, text: str, finish_reason: str) -> dict[str, Any]:
    return {
        "index": index,
        "message": {"role": "assistant", "content": text},
        "logprobs": None,
        "finish_reason": finish_reason,
    }


def chat_delta(index: int, delta: dict[str, str], finish_reason: str | None) -> dict[str, Any]:
    return {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish_reason}


def text_choice(index: int, text: str, finish_reason: str | None) -> dict[str, Any]:
    return {"index": index, "text": text, "logprobs": None, "finish_reason": finish_reason}
