"""The HTTP side of ``codit serve``: routes, API keys, limits and OpenAI-style errors.

``create_app`` returns a FastAPI app whose lifespan loads the models in a background thread
(``/health`` answers 503 until they are ready, 200 after) and closes the scheduler on shutdown.
Each completion request is checked (body size, JSON, fields, model name, message count, the
context), rendered into prompt ids, handed to the ``Scheduler`` as one engine request per
sample, and answered either whole or as server-sent events in the OpenAI chunk format. A
client that goes away, or a request that runs past ``--request-timeout``, has its rows
cancelled at once. Bodies and prompts are logged only with ``--log-requests``; API keys never.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException

from codit.serve import protocol
from codit.serve.config import ServeConfig
from codit.serve.model import ServedModel
from codit.serve.protocol import APIError, ChatRequest, CompletionRequest
from codit.serve.scheduler import Closed, QueueFull, Scheduler, Ticket
from codit.serve.stream import TextStream

log = logging.getLogger(__name__)


class Service:
    """The served model and its scheduler, once loaded; what every route reads.

    Args:
        config: the server settings.
        load: builds the ``ServedModel`` (loads the weights); runs in a background thread.
        on_ready: called once the model is loaded.
        on_error: called with the exception if loading fails.
    """

    def __init__(
        self,
        config: ServeConfig,
        load: Callable[[], ServedModel],
        on_ready: Callable[[], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
    ):
        self.config = config
        self._load = load
        self._on_ready = on_ready
        self._on_error = on_error
        self.model: ServedModel | None = None
        self.scheduler: Scheduler | None = None
        self.error: BaseException | None = None
        self.started = int(time.time())
        key_env = config.api_key_env
        self._key = os.environ.get(key_env, "").encode() if key_env else None

    def start(self) -> None:
        threading.Thread(target=self._load_now, name="codit-load", daemon=True).start()

    def _load_now(self) -> None:
        try:
            model = self._load()
            self.scheduler = Scheduler(model.engine, self.config.queue_size)
            self.model = model
        except BaseException as err:  # reported by on_error; the CLI exits with it
            self.error = err
            log.error("loading the models failed: %s", err)
            if self._on_error:
                self._on_error(err)
            return
        if self._on_ready:
            self._on_ready()

    def close(self) -> None:
        if self.scheduler is not None:
            self.scheduler.close()

    def ready(self) -> tuple[ServedModel, Scheduler]:
        if self.model is None or self.scheduler is None:
            raise APIError(
                503,
                "the models are still loading; retry shortly",
                type="server_error",
                code="loading",
                headers={"Retry-After": "5"},
            )
        return self.model, self.scheduler

    async def accept(self, request: Request, cls: type[Any]) -> tuple[ServedModel, Scheduler, Any]:
        """The checks every completion request passes first, in order; its parsed body."""
        self.check_key(request)
        served, scheduler = self.ready()
        body = parse_body(await read_body(request, self.config.max_body_bytes), self.config)
        req = protocol.parse(cls, body)
        check_model(req.model, self.config)
        return served, scheduler, req

    def check_key(self, request: Request) -> None:
        """Constant-time comparison of the bearer token with the configured key."""
        if self._key is None:
            return
        given = request.headers.get("authorization", "")
        token = given[7:].strip() if given[:7].lower() == "bearer " else ""
        if not self._key or not hmac.compare_digest(token.encode(), self._key):
            raise APIError(401, "incorrect or missing API key", code="invalid_api_key")


def create_app(service: Service) -> FastAPI:
    """The FastAPI app over ``service`` (which it starts and closes with its lifespan)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service.start()
        yield
        await asyncio.to_thread(service.close)

    app = FastAPI(title="codit serve", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.service = service
    config = service.config

    @app.exception_handler(APIError)
    async def api_error(request: Request, err: APIError) -> JSONResponse:
        return JSONResponse(err.body(), status_code=err.status, headers=err.headers)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, err: HTTPException) -> JSONResponse:
        code = "not_found" if err.status_code == 404 else None
        body = APIError(err.status_code, str(err.detail), code=code).body()
        return JSONResponse(body, status_code=err.status_code)

    @app.get("/health")
    async def health() -> JSONResponse:
        if service.model is None:
            return JSONResponse({"status": "loading"}, status_code=503)
        return JSONResponse({"status": "ready"})

    @app.get("/v1/models")
    async def models(request: Request) -> dict[str, Any]:
        service.check_key(request)
        return {"object": "list", "data": [model_card(service)]}

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Any:
        served, scheduler, req = await service.accept(request, ChatRequest)
        if len(req.messages) > config.max_messages:
            raise APIError(
                400,
                f"{len(req.messages)} messages but this server takes at most "
                f"{config.max_messages} (--max-messages)",
                param="messages",
            )
        try:
            ids = served.chat_prompt([m.as_template_message() for m in req.messages])
        except Exception as err:  # the template's own message says what is wrong
            raise APIError(
                400, f"the chat template rejected the messages: {err}", param="messages"
            ) from None
        plan = protocol.sampling(req, config.decoding, config.max_tokens_limit, config.max_n)
        check_context(len(ids), plan.max_tokens, served.max_context)
        rid = protocol.new_id("chatcmpl")
        engine_requests = served.requests(ids, plan, rid)
        run = _Run(service, served, scheduler, request, "chat", rid, req, len(ids))
        return await run.answer(engine_requests, plan)

    @app.post("/v1/completions")
    async def completions(request: Request) -> Any:
        served, scheduler, req = await service.accept(request, CompletionRequest)
        prompts = text_prompts(req.prompt, served)
        if len(prompts) * req.n > config.max_n:
            raise APIError(
                400,
                f"{len(prompts)} prompts x n={req.n} is more than this server's "
                f"--max-n {config.max_n}",
                param="prompt",
            )
        plan = protocol.sampling(req, config.decoding, config.max_tokens_limit, config.max_n)
        rid = protocol.new_id("cmpl")
        engine_requests = []
        for p, ids in enumerate(prompts):
            check_context(len(ids), plan.max_tokens, served.max_context)
            engine_requests += served.requests(ids, plan, f"{rid}/{p}")
        run = _Run(
            service, served, scheduler, request, "text", rid, req, sum(len(p) for p in prompts)
        )
        return await run.answer(engine_requests, plan)

    return app


# ---- checks -------------------------------------------------------------------------------
async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int) -> APIError:
    return APIError(
        413, f"the request body is larger than {limit} bytes (--max-body-bytes)", code="too_large"
    )


def parse_body(raw: bytes, config: ServeConfig) -> Any:
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise APIError(
            400, f"the request body is not valid JSON: {err}", code="invalid_json"
        ) from None
    if config.log_requests:
        log.info("request body: %s", raw.decode("utf-8", "replace"))
    return data


def check_model(name: str, config: ServeConfig) -> None:
    if name != config.served_model_name:
        raise APIError(
            404,
            f"the model {name!r} does not exist here; this server serves "
            f"{config.served_model_name!r}",
            param="model",
            code="model_not_found",
        )


def check_context(prompt_tokens: int, max_tokens: int | None, context: int | None) -> None:
    if prompt_tokens == 0:
        raise APIError(400, "the prompt has no tokens", param="prompt")
    if context is None:
        return
    wanted = prompt_tokens + (max_tokens or 1)
    if wanted > context:
        raise APIError(
            400,
            f"this model's context holds {context} tokens, but the request needs {wanted} "
            f"({prompt_tokens} in the prompt, {max_tokens or 1} to generate); "
            "shorten the prompt or lower max_tokens",
            param="max_tokens" if max_tokens else "messages",
            code="context_length_exceeded",
        )


def text_prompts(prompt: Any, served: ServedModel) -> list[list[int]]:
    """A completion request's prompts as token ids (strings are tokenized, ids kept)."""
    if isinstance(prompt, str):
        return [served.text_prompt(prompt)]
    if prompt and all(isinstance(p, int) for p in prompt):
        return [list(prompt)]
    if not prompt:
        raise APIError(400, "the prompt list is empty", param="prompt")
    return [served.text_prompt(p) if isinstance(p, str) else list(p) for p in prompt]


def model_card(service: Service) -> dict[str, Any]:
    config = service.config
    return {
        "id": config.served_model_name,
        "object": "model",
        "created": service.started,
        "owned_by": "codit",
        "codit": {
            "instruct": config.instruct,
            "base": config.base if config.decoding.contrastive else None,
            "mode": config.decoding.mode,
            "rule": config.decoding.rule,
            "ready": service.model is not None,
        },
    }


# ---- one request, start to finish ---------------------------------------------------------
class _Run:
    """Submits a request's samples and answers with their completions, whole or streamed."""

    def __init__(
        self,
        service: Service,
        served: ServedModel,
        scheduler: Scheduler,
        http: Request,
        kind: str,
        rid: str,
        req: Any,
        prompt_tokens: int,
    ):
        self.service, self.served, self.scheduler, self.http = service, served, scheduler, http
        self.kind, self.rid, self.req, self.prompt_tokens = kind, rid, req, prompt_tokens
        self.model = service.config.served_model_name
        self.deadline = time.monotonic() + service.config.request_timeout
        self.object = "chat.completion" if kind == "chat" else "text_completion"

    def _submit(self, requests: list[Any], stream: bool) -> Ticket:
        try:
            return self.scheduler.submit(requests, stream)
        except QueueFull:
            raise APIError(
                429,
                f"the server is busy ({self.scheduler.queue_size} samples in flight, "
                "--queue-size); retry shortly",
                type="rate_limit_error",
                code="queue_full",
                headers={"Retry-After": "1"},
            ) from None
        except Closed:
            raise APIError(
                503, "the server is shutting down", type="server_error", code="shutting_down"
            ) from None

    async def answer(self, requests: list[Any], plan: protocol.Sampling) -> Any:
        stream = bool(self.req.stream)
        ticket = self._submit(requests, stream)
        if stream:
            stops = plan.settings.get("stop", self.service.config.decoding.stop)
            return StreamingResponse(self._events(ticket, stops), media_type="text/event-stream")
        try:
            done = await self._collect(ticket)
        finally:
            self.scheduler.cancel(ticket)  # a no-op when every sample finished
        return JSONResponse(self._whole(done))

    async def _collect(self, ticket: Ticket) -> list[Any]:
        """Every sample's completion; cancels on timeout or when the client goes away."""
        done: list[Any] = [None] * len(ticket.keys)
        gone = asyncio.ensure_future(_disconnected(self.http))
        try:
            left = len(done)
            while left:
                kind, index, value = await self._next_or_gone(ticket, gone)
                if kind == "error":
                    raise APIError(500, value, type="server_error")
                if kind == "done":
                    assert index is not None
                    done[index] = _checked(value)
                    left -= 1
        finally:
            gone.cancel()
        return done

    async def _next_or_gone(self, ticket: Ticket, gone: asyncio.Future[None]) -> Any:
        """The next event; a 499 once the client has gone, a 504 past the deadline."""
        left = self.deadline - time.monotonic()
        get: asyncio.Future[Any] = asyncio.ensure_future(ticket.events.get())
        waits: set[asyncio.Future[Any]] = {get, gone}
        finished, _ = await asyncio.wait(
            waits, timeout=max(left, 0), return_when=asyncio.FIRST_COMPLETED
        )
        if get in finished:
            return get.result()
        get.cancel()
        if gone in finished:
            # The client left: its rows are cancelled (``answer``), and this reply goes nowhere.
            raise APIError(499, "the client closed the connection", code="client_closed")
        raise self._timeout()

    async def _wait(self, ticket: Ticket) -> Any:
        """The next event, waiting at most until the deadline (then a 504 ``APIError``)."""
        event = _ready(ticket)
        if event is not None:
            return event
        try:
            async with asyncio.timeout(max(self.deadline - time.monotonic(), 0)):
                return await ticket.events.get()
        except TimeoutError:
            raise self._timeout() from None

    def _timeout(self) -> APIError:
        return APIError(
            504,
            f"the request ran past {self.service.config.request_timeout:g} s "
            "(--request-timeout) and was cancelled",
            type="server_error",
            code="timeout",
        )

    def _whole(self, done: list[Any]) -> dict[str, Any]:
        if self.kind == "chat":
            choices = [protocol.chat_choice(i, c.text, c.finish_reason) for i, c in enumerate(done)]
        else:
            choices = [protocol.text_choice(i, c.text, c.finish_reason) for i, c in enumerate(done)]
        body = protocol.envelope(self.object, self.rid, self.model, choices)
        tokens = sum(c.completion_tokens for c in done)
        body["usage"] = protocol.usage(self.prompt_tokens, tokens)
        log.info("%s: %d choices, %d+%d tokens", self.rid, len(done), self.prompt_tokens, tokens)
        return body

    async def _events(self, ticket: Ticket, stops: Any) -> AsyncIterator[str]:
        """Server-sent events in the OpenAI chunk format, ``data: [DONE]`` last."""
        texts = [TextStream(self.served.tokenizer, stops) for _ in ticket.keys]
        kind = self.object + ".chunk" if self.kind == "chat" else self.object
        left, tokens = len(texts), 0
        try:
            if self.kind == "chat":
                yield self._chunk(
                    kind,
                    [
                        protocol.chat_delta(i, {"role": "assistant", "content": ""}, None)
                        for i in range(len(texts))
                    ],
                )
            while left:
                pieces: list[str] = []
                try:
                    event = await self._wait(ticket)
                    while event is not None:  # everything that is there goes out in one write
                        event_kind, index, value = event
                        if event_kind == "error":
                            raise APIError(500, value, type="server_error")
                        assert index is not None
                        if event_kind == "tokens":
                            delta = texts[index].push(value)
                            if delta:
                                pieces.append(self._chunk(kind, [self._delta(index, delta, None)]))
                        else:
                            done = _checked(value)
                            rest = texts[index].finish(done.text)
                            if rest:
                                pieces.append(self._chunk(kind, [self._delta(index, rest, None)]))
                            finish = self._delta(index, None, done.finish_reason)
                            pieces.append(self._chunk(kind, [finish]))
                            tokens += done.completion_tokens
                            left -= 1
                        event = _ready(ticket)
                except APIError as err:
                    yield "".join(pieces) + _sse(err.body())
                    return
                if pieces:
                    yield "".join(pieces)
            options = self.req.stream_options
            if options is not None and options.include_usage:
                chunk = protocol.envelope(kind, self.rid, self.model, [])
                chunk["usage"] = protocol.usage(self.prompt_tokens, tokens)
                yield _sse(chunk)
            yield "data: [DONE]\n\n"
        finally:
            # A client that disconnects lands here too (the response task is cancelled).
            self.scheduler.cancel(ticket)

    def _chunk(self, kind: str, choices: list[dict[str, Any]]) -> str:
        return _sse(protocol.envelope(kind, self.rid, self.model, choices))

    def _delta(self, index: int, text: str | None, finish: str | None) -> dict[str, Any]:
        if self.kind == "chat":
            return protocol.chat_delta(index, {} if text is None else {"content": text}, finish)
        return protocol.text_choice(index, text or "", finish)


def _ready(ticket: Ticket) -> Any:
    """An event already on the ticket's queue, or None."""
    try:
        return ticket.events.get_nowait()
    except asyncio.QueueEmpty:
        return None


def _checked(done: Any) -> Any:
    if done.finish_reason == "error" or done.error:
        raise APIError(400, f"the engine rejected the request: {done.error}", code="rejected")
    return done


def _sse(obj: dict[str, Any]) -> str:
    return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n"


async def _disconnected(request: Request) -> None:
    """Returns once the client has closed the connection (the body is already read)."""
    with suppress(Exception):
        while True:
            message = await request.receive()
            if message["type"] == "http.disconnect":
                return
    await asyncio.Event().wait()  # no way to tell: wait forever (the caller cancels us)
