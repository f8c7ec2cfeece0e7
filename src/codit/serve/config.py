"""The settings of ``codit serve``: one frozen dataclass, the source of its CLI flags.

The nested ``DecodingConfig`` holds the server's defaults: a request that leaves a setting out
(temperature, top_p, alpha, ...) gets the value given here, and ``mode``/``rule`` say what the
loaded engine can do (a ``direct`` server loads no base model, and one rule serves every row).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from codit.decoding.config import DecodingConfig
from codit.errors import ConfigError
from codit.generation.config import TINY_PAIR
from codit.models.loading import DEVICES, DTYPES


@dataclass(frozen=True)
class ServeConfig:
    """Everything that defines a server. Fields become ``--flags``."""

    instruct: str = field(
        default="tiny-instruct",
        metadata={
            "help": "instruct (post-trained) model: hub id, local directory or tiny-instruct"
        },
    )
    base: str | None = field(
        default=None,
        metadata={"help": "its base model (codit mode); defaults to tiny-base with tiny-instruct"},
    )
    decoding: DecodingConfig = field(default_factory=DecodingConfig)
    host: str = field(
        default="127.0.0.1",
        metadata={"help": "address to bind; 0.0.0.0 exposes the server to the network"},
    )
    port: int = field(default=8000, metadata={"help": "port to listen on"})
    served_model_name: str = field(
        default="codit", metadata={"help": "the model name clients send and /v1/models lists"}
    )
    api_key_env: str | None = field(
        default=None,
        metadata={"help": "environment variable holding the API key clients must send (Bearer)"},
    )
    batch_size: int = field(default=8, metadata={"help": "rows decoded at once"})
    kv_cache_memory: str | None = field(
        default=None,
        metadata={
            "help": "K/V cache budget of both models: a size (4GB, 512MiB) or a fraction of "
            "free device memory (0.5); default 85%% of free GPU memory, grown on demand on CPU"
        },
    )
    queue_size: int = field(
        default=256,
        metadata={
            "help": "most samples in flight (running or waiting); beyond it requests get 429"
        },
    )
    request_timeout: float = field(
        default=600.0, metadata={"help": "seconds a request may take before it is cancelled"}
    )
    shutdown_grace: float = field(
        default=30.0,
        metadata={"help": "seconds SIGTERM waits for requests in flight before cancelling them"},
    )
    max_body_bytes: int = field(
        default=1_048_576, metadata={"help": "largest request body accepted, in bytes"}
    )
    max_messages: int = field(default=256, metadata={"help": "most messages in one chat request"})
    max_tokens_limit: int = field(
        default=4096, metadata={"help": "largest max_tokens a request may ask for"}
    )
    max_n: int = field(default=16, metadata={"help": "largest n (samples per request)"})
    chat_template_kwargs: dict[str, Any] = field(
        default_factory=dict,
        metadata={"help": "extra chat-template variables, e.g. enable_thinking=false"},
    )
    log_requests: bool = field(
        default=False,
        metadata={"help": "log request bodies and prompts (off: they may hold private data)"},
    )
    device: str = field(default="auto", metadata={"help": "auto, cpu, cuda or cuda:N"})
    base_device: str | None = field(
        default=None, metadata={"help": "put the base model on another device (e.g. cuda:1)"}
    )
    dtype: str = field(
        default="auto",
        metadata={
            "help": "auto (bf16 on CUDA, fp32 on CPU), float32, bfloat16 or float16",
            "choices": DTYPES,
        },
    )
    trust_remote_code: bool = field(
        default=False,
        metadata={"help": "run code shipped with the models (only for models you trust)"},
    )

    def __post_init__(self) -> None:
        if self.base is None and self.instruct == TINY_PAIR[0] and self.decoding.contrastive:
            object.__setattr__(self, "base", TINY_PAIR[1])
        problems = []
        if self.decoding.contrastive and not self.base:
            problems.append(
                "--mode codit needs --base (the instruct model's own base model); or use --mode direct"
            )
        if not 0 <= self.port <= 65535:
            problems.append(f"--port must be in [0, 65535], got {self.port}")
        if not self.served_model_name:
            problems.append("--served-model-name must not be empty")
        for limit, number, low in (
            ("--batch-size", self.batch_size, 1),
            ("--queue-size", self.queue_size, 1),
            ("--max-body-bytes", self.max_body_bytes, 256),
            ("--max-messages", self.max_messages, 1),
            ("--max-tokens-limit", self.max_tokens_limit, 1),
            ("--max-n", self.max_n, 1),
        ):
            if number < low:
                problems.append(f"{limit} must be >= {low}, got {number}")
        if self.kv_cache_memory is not None:
            from codit.decoding.kvcache import parse_memory

            try:
                parse_memory(self.kv_cache_memory)
            except ConfigError as err:
                problems.append(str(err))
        if self.request_timeout <= 0:
            problems.append(f"--request-timeout must be > 0, got {self.request_timeout}")
        if self.shutdown_grace < 0:
            problems.append(f"--shutdown-grace must be >= 0, got {self.shutdown_grace}")
        if self.api_key_env is not None and not self.api_key_env:
            problems.append("--api-key-env must name an environment variable")
        for name, value in (("--device", self.device), ("--base-device", self.base_device)):
            if value is not None and value not in DEVICES and not value.startswith("cuda:"):
                problems.append(f"{name} must be auto, cpu, cuda or cuda:N, got {value!r}")
        if self.dtype not in DTYPES:
            problems.append(f"--dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        if problems:
            raise ConfigError(problems)
