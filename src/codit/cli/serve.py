"""``codit serve``: flags -> ServeConfig -> a uvicorn server over ``codit.serve.app``."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from contextlib import suppress
from typing import Any

from codit.config import add_arguments, from_namespace
from codit.errors import ConfigError, require
from codit.serve.config import ServeConfig

EXAMPLE = """examples:
  codit serve                                           # the built-in tiny pair on 127.0.0.1:8000
  codit serve --instruct Qwen/Qwen3-8B --base Qwen/Qwen3-8B-Base --port 8000 \\
      --api-key-env CODIT_API_KEY --chat-template-kwargs enable_thinking=false
  curl http://127.0.0.1:8000/v1/chat/completions -H 'Content-Type: application/json' \\
      -d '{"model": "codit", "messages": [{"role": "user", "content": "hello"}]}'
"""


class _Stop(Exception):
    """Raised by the signal handler once uvicorn has drained."""


def _stopped(signum: int, frame: Any) -> None:
    raise _Stop


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "serve",
        help="serve CoDIT decoding as an OpenAI-compatible HTTP endpoint",
        description="An OpenAI-compatible server (/v1/chat/completions, /v1/completions, "
        "/v1/models, /health) whose every answer is decoded by codit's engine: concurrent "
        "requests share its continuous batch. Request fields mode, alpha and beta "
        "override the server's defaults per request; a request's rule must match --rule. "
        "SIGTERM drains requests in flight.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", help="YAML file with any of the settings below (flags win)")
    add_arguments(p, ServeConfig)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    config = from_namespace(ServeConfig, args)
    require("fastapi", "serve")
    require("uvicorn", "serve")
    if config.api_key_env and not os.environ.get(config.api_key_env):
        raise ConfigError(
            f"--api-key-env names {config.api_key_env}, which is not set or empty; "
            "export the key there first"
        )
    import uvicorn

    from codit.cli.quiet import quiet_transformers
    from codit.models.chat import require_chat_template
    from codit.models.pair import load_pair_tokenizer
    from codit.serve.app import Service, create_app
    from codit.serve.model import load_served_model

    quiet_transformers()
    # Bad model arguments and a missing chat template fail now, before any weights load.
    base = config.base if config.decoding.contrastive else None
    tokenizer, _ = load_pair_tokenizer(config.instruct, base, config.trust_remote_code)
    require_chat_template(tokenizer)

    url = f"http://{config.host}:{config.port}/v1"
    server: Any = None

    def ready() -> None:
        print(f"codit: ready; model {config.served_model_name!r} at {url}", file=sys.stderr)

    def failed(err: BaseException) -> None:
        if server is not None:
            server.should_exit = True

    service = Service(config, lambda: load_served_model(config), ready, failed)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(service),
            host=config.host,
            port=config.port,
            log_level="info" if args.debug else "warning",
            access_log=args.debug,
            timeout_graceful_shutdown=int(config.shutdown_grace),
        )
    )
    print(
        f"codit: loading {config.instruct}" + (f" and {base}" if base else "") + f"; {url}",
        file=sys.stderr,
    )
    # uvicorn drains on SIGTERM/SIGINT, then raises the signal again for the handler it found:
    # this one, so that a drained server exits 0 instead of dying by the signal.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _stopped)
    with suppress(_Stop):
        server.run()
    if service.error is not None:
        raise service.error  # a CoditError prints as one sentence; anything else is a bug
    print("codit: server stopped", file=sys.stderr)
    return 0
