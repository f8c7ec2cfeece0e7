"""The settings of ``codit serve``: one frozen dataclass, the source of its CLI flags.

The nested ``DecodingConfig`` holds the server's defaults: a request that leaves a setting out
(temperature, top_p, alpha, ...) gets the value given here, and ``mode``/``rule`` say what the
loaded engine can do (a ``direct`` server loads no base model, and one rule serves every row).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from codit.decoding.config import DecodingConfig
from codit.generation.config import model_problems, model_setting
from codit.settings import check, setting


@dataclass(frozen=True)
class ServeConfig:
    """Everything that defines a server. Fields become ``--flags``."""

    instruct: str = model_setting("instruct")
    base: str | None = model_setting("base")
    decoding: DecodingConfig = field(default_factory=DecodingConfig)
    host: str = setting("127.0.0.1", "address to bind; 0.0.0.0 exposes the server to the network")
    port: int = setting(8000, "port to listen on", ge=0, le=65535)
    served_model_name: str = setting("codit", "the model name clients send and /v1/models lists")
    api_key_env: str | None = setting(
        None, "environment variable holding the API key clients must send (Bearer)"
    )
    batch_size: int = model_setting("batch_size")
    kv_cache_memory: str | None = model_setting("kv_cache_memory")
    queue_size: int = setting(
        256, "most samples in flight (running or waiting); beyond it requests get 429", ge=1
    )
    request_timeout: float = setting(
        600.0, "seconds a request may take before it is cancelled", gt=0
    )
    shutdown_grace: float = setting(
        30.0, "seconds SIGTERM waits for requests in flight before cancelling them", ge=0
    )
    max_body_bytes: int = setting(1_048_576, "largest request body accepted, in bytes", ge=256)
    max_messages: int = setting(256, "most messages in one chat request", ge=1)
    max_tokens_limit: int = setting(4096, "largest max_tokens a request may ask for", ge=1)
    max_n: int = setting(16, "largest n (samples per request)", ge=1)
    chat_template_kwargs: dict[str, Any] = model_setting("chat_template_kwargs")
    log_requests: bool = setting(
        False, "log request bodies and prompts (off: they may hold private data)"
    )
    device: str = model_setting("device")
    base_device: str | None = model_setting("base_device")
    dtype: str = model_setting("dtype")
    trust_remote_code: bool = model_setting("trust_remote_code")

    def __post_init__(self) -> None:
        problems = model_problems(self)
        if not self.served_model_name:
            problems.append("--served-model-name must not be empty")
        if self.api_key_env is not None and not self.api_key_env:
            problems.append("--api-key-env must name an environment variable")
        check(self, problems)
