"""Backend spec strings and the settings that go with them.

On the command line a backend is one string:

* ``local:MODEL_OR_PATH`` - a model run by codit's engine, e.g. ``local:tiny-instruct``;
* ``openai:MODEL@BASE_URL`` - an OpenAI-compatible server, e.g.
  ``openai:qwen3-8b@http://localhost:8000/v1``; ``openai:MODEL`` alone means the OpenAI API;
* ``codit:INSTRUCT+BASE`` - CoDIT decoding of the pair in this process (server-default alpha and
  beta), e.g. ``codit:tiny-instruct+tiny-base``; ``codit:http://HOST:PORT`` - a running
  ``codit serve`` (its default model name ``codit``), through the openai backend.

``BackendConfig`` holds everything else (concurrency, timeouts, retries, the cache file, the API
key's environment variable) and is the single source of those flags.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from codit.backends.base import TextBackend
from codit.backends.cache import ResponseCache
from codit.errors import ConfigError
from codit.settings import check, setting

_EXAMPLE = (
    "local:MODEL_OR_PATH or openai:MODEL@BASE_URL (e.g. openai:qwen3-8b@http://localhost:8000/v1)"
    ", or codit:INSTRUCT+BASE / codit:http://HOST:PORT for CoDIT"
)
_OPENAI = re.compile(r"^openai:(?P<model>[^@\s]+?)(?:@(?P<url>https?://\S+))?$")


@dataclass(frozen=True)
class BackendSpec:
    """A parsed spec: the backend kind, the model, and the server for ``openai``."""

    kind: str
    model: str
    base_url: str | None = None

    def __str__(self) -> str:
        if self.kind == "openai" and self.base_url:
            return f"openai:{self.model}@{self.base_url}"
        return f"{self.kind}:{self.model}"


def parse_spec(spec: str) -> BackendSpec:
    """Parse ``local:MODEL_OR_PATH``, ``openai:MODEL@BASE_URL``, ``codit:INSTRUCT+BASE`` or
    ``codit:http://HOST:PORT`` (the last one is an ``openai`` spec for the model ``codit``).

    Raises:
        ConfigError: the string is neither form.
    """
    spec = spec.strip()
    if spec.startswith("local:") and spec[len("local:") :].strip():
        return BackendSpec("local", spec[len("local:") :].strip())
    if spec.startswith("codit:"):
        rest = spec[len("codit:") :].strip()
        if rest.startswith(("http://", "https://")):
            url = rest.rstrip("/")
            return BackendSpec("openai", "codit", url if url.endswith("/v1") else url + "/v1")
        instruct, plus, base = rest.partition("+")
        if plus and instruct.strip() and base.strip():
            return BackendSpec("codit", f"{instruct.strip()}+{base.strip()}")
    match = _OPENAI.match(spec)
    if match:
        return BackendSpec("openai", match["model"], match["url"])
    raise ConfigError(f"backend spec {spec!r} is not understood; write {_EXAMPLE}")


@dataclass(frozen=True)
class BackendConfig:
    """How codit talks to a text backend."""

    api_key_env: str = setting(
        "OPENAI_API_KEY", "environment variable holding the API key of an openai backend"
    )
    concurrency: int = setting(8, "requests in flight at once (openai)", ge=1)
    timeout: float = setting(120.0, "seconds to wait for one reply (openai)", gt=0)
    max_retries: int = setting(
        5, "retries on rate limits, server errors and timeouts (openai)", ge=0
    )
    retry_delay: float = setting(
        1.0, "first backoff in seconds, doubled on each retry (openai)", ge=0
    )
    cache: str | None = setting(None, "SQLite response cache; a rerun reuses every finished call")
    structured_output: bool = setting(
        True, "ask for JSON-schema structured output where prompts have one (openai)"
    )
    device: str = setting("auto", "device of a local backend")
    dtype: str = setting("auto", "dtype of a local backend")
    batch_size: int = setting(8, "conversations per batch (local)", ge=1)

    def __post_init__(self) -> None:
        check(self, [] if self.api_key_env else ["--api-key-env must name an environment variable"])


def open_backend(spec: str | BackendSpec, config: BackendConfig | None = None) -> TextBackend:
    """Build the backend a spec names, with its response cache if ``config.cache`` is set."""
    parsed = parse_spec(spec) if isinstance(spec, str) else spec
    config = config or BackendConfig()
    cache = ResponseCache(Path(config.cache)) if config.cache else None
    if parsed.kind in ("local", "codit"):
        from codit.backends.local import LocalBackend

        instruct, _, base = (
            parsed.model.partition("+") if parsed.kind == "codit" else (parsed.model, "", "")
        )
        return LocalBackend(
            instruct,
            base=base or None,
            device=config.device,
            dtype=config.dtype,
            batch_size=config.batch_size,
            cache=cache,
        )
    from codit.backends.openai import OpenAIBackend

    return OpenAIBackend(
        parsed.model,
        parsed.base_url,
        api_key_env=config.api_key_env,
        concurrency=config.concurrency,
        timeout=config.timeout,
        max_retries=config.max_retries,
        retry_delay=config.retry_delay,
        cache=cache,
        structured_output=config.structured_output,
    )
