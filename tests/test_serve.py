"""``codit serve`` over HTTP: the official openai client, the tiny pair, load, errors, SIGTERM.

One server with the shipped tiny pair runs in a background thread for the module; tests that
need rows that never end (queue full, disconnects, timeouts) get their own server over
``serve_fakes.FakeEngine``.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed")
pytest.importorskip("uvicorn", reason="the serve extra is not installed")
openai = pytest.importorskip("openai", reason="the api extra is not installed")

from codit.decoding.config import DecodingConfig  # noqa: E402
from codit.models.loading import load_tokenizer  # noqa: E402
from codit.serve.app import Service, create_app  # noqa: E402
from codit.serve.background import BackgroundServer  # noqa: E402
from codit.serve.config import ServeConfig  # noqa: E402
from codit.serve.model import ServedModel, load_served_model  # noqa: E402
from serve_fakes import FakeEngine, wait_until  # noqa: E402

MAX_TOKENS = 16
CONFIG = ServeConfig(
    device="cpu", decoding=DecodingConfig(max_new_tokens=MAX_TOKENS), queue_size=512
)
PROMPTS = [
    "write a poem about number 3",
    "hello fox",
    "the base model knows facts",
    "write three bullet points about apples",
]


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


@pytest.fixture(scope="module")
def tiny() -> Iterator[tuple[BackgroundServer, Service]]:
    service = Service(CONFIG, lambda: load_served_model(CONFIG))
    with BackgroundServer(create_app(service)) as server:
        yield server, service


@pytest.fixture(scope="module")
def offline() -> Any:
    """The same pair loaded apart, decoding through the library (``LocalGenerator``)."""
    from codit.generation.texts import LocalGenerator

    generator = LocalGenerator("tiny-instruct", "tiny-base", device="cpu")

    def answers(prompts: list[str], mode: str = "codit", **settings: Any) -> list[str]:
        settings = {"temperature": 0.0, "max_new_tokens": MAX_TOKENS, **settings}
        outs = generator.generate([user(p) for p in prompts], mode, **settings)
        return [o.text for o in outs]

    return answers


def client(server: BackgroundServer, **kw: Any) -> Any:
    return openai.OpenAI(base_url=server.url, api_key="none", max_retries=0, **kw)


def post(server: BackgroundServer, path: str, body: bytes, headers: dict[str, str] | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    conn.request("POST", path, body, {"Content-Type": "application/json", **(headers or {})})
    reply = conn.getresponse()
    data = reply.read()
    conn.close()
    return reply.status, dict(reply.getheaders()), json.loads(data) if data else None


# ---- the openai client, every endpoint ----------------------------------------------------
def test_sync_client_chat_completions_models_with_and_without_stream(tiny, offline) -> None:
    server, _ = tiny
    c = client(server)
    assert [m.id for m in c.models.list().data] == ["codit"]

    whole = c.chat.completions.create(
        model="codit", messages=user(PROMPTS[0]), temperature=0, max_tokens=MAX_TOKENS
    )
    (choice,) = whole.choices
    assert choice.message.content == offline(PROMPTS[:1])[0]
    assert choice.finish_reason in ("stop", "length") and whole.object == "chat.completion"
    assert whole.usage.completion_tokens >= 1 and whole.usage.prompt_tokens > 3
    assert whole.usage.total_tokens == whole.usage.prompt_tokens + whole.usage.completion_tokens

    chunks = list(
        c.chat.completions.create(
            model="codit",
            messages=user(PROMPTS[0]),
            temperature=0,
            max_tokens=MAX_TOKENS,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert text == choice.message.content
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [ch.choices[0].finish_reason for ch in chunks if ch.choices][-1] == choice.finish_reason
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens
    assert len(chunks) > 4  # streamed piece by piece

    done = c.completions.create(model="codit", prompt="hello fox", temperature=0, max_tokens=8)
    streamed = c.completions.create(
        model="codit", prompt="hello fox", temperature=0, max_tokens=8, stream=True
    )
    assert "".join(ch.choices[0].text for ch in streamed) == done.choices[0].text
    assert done.object == "text_completion" and 1 <= done.usage.completion_tokens <= 8


def test_async_client_every_endpoint(tiny, offline) -> None:
    server, _ = tiny
    expected = offline(PROMPTS[1:2])[0]

    async def main() -> None:
        c = openai.AsyncOpenAI(base_url=server.url, api_key="none", max_retries=0)
        models = await c.models.list()
        assert [m.id for m in models.data] == ["codit"]
        kw: dict[str, Any] = {"model": "codit", "temperature": 0, "max_tokens": MAX_TOKENS}
        whole, stream = await asyncio.gather(
            c.chat.completions.create(messages=user(PROMPTS[1]), **kw),
            c.chat.completions.create(messages=user(PROMPTS[1]), stream=True, **kw),
        )
        parts = [ch.choices[0].delta.content or "" async for ch in stream if ch.choices]
        assert whole.choices[0].message.content == "".join(parts) == expected
        text = await c.completions.create(prompt="hello", **kw)
        parts = [
            ch.choices[0].text
            async for ch in await c.completions.create(prompt="hello", stream=True, **kw)
        ]
        assert "".join(parts) == text.choices[0].text
        await c.close()

    asyncio.run(main())


def test_n_samples_are_distinct_and_a_seed_reproduces_them(tiny) -> None:
    server, _ = tiny
    c = client(server)
    # A raw prompt outside the chat format: the tiny pair is unsure there, so samples differ.
    kw: dict[str, Any] = {"model": "codit", "prompt": "hello", "max_tokens": 12}
    first = c.completions.create(n=3, seed=11, temperature=1.0, **kw)
    again = c.completions.create(n=3, seed=11, temperature=1.0, **kw)
    texts = [ch.text for ch in first.choices]
    assert [ch.index for ch in first.choices] == [0, 1, 2]
    assert len(set(texts)) == 3  # three seeds, not three copies
    assert [ch.text for ch in again.choices] == texts
    greedy = c.completions.create(n=2, temperature=0, **kw)
    assert greedy.choices[0].text == greedy.choices[1].text


# ---- the same answers as offline ----------------------------------------------------------
def test_greedy_answers_equal_codit_generate(tiny, tmp_path: Path) -> None:
    from codit.cli.main import main

    server, _ = tiny
    inp = tmp_path / "p.jsonl"
    inp.write_text(
        "".join(json.dumps({"id": f"q{i}", "prompt": p}) + "\n" for i, p in enumerate(PROMPTS))
    )
    c = client(server)
    for mode in ("codit", "direct"):
        out = tmp_path / f"{mode}.jsonl"
        flags = ["--input", str(inp), "--output", str(out), "--mode", mode, "--device", "cpu"]
        flags += ["--temperature", "0", "--max-new-tokens", str(MAX_TOKENS), "--no-progress"]
        assert main(["generate", *flags]) == 0
        records = {r["id"]: r for r in map(json.loads, out.read_text().splitlines())}
        for i, prompt in enumerate(PROMPTS):
            reply = c.chat.completions.create(
                model="codit",
                messages=user(prompt),
                temperature=0,
                max_tokens=MAX_TOKENS,
                extra_body={"mode": mode},
            )
            record = records[f"q{i}"]
            assert reply.choices[0].message.content == record["messages"][-1]["content"]
            assert reply.choices[0].finish_reason == record["meta"]["finish_reason"]
            assert reply.usage.prompt_tokens == record["meta"]["prompt_tokens"]


def test_200_concurrent_requests_from_50_threads(tiny, offline) -> None:
    server, service = tiny
    prompts = [f"question {i}: {PROMPTS[i % 4]}" for i in range(200)]
    expected = offline(prompts, max_new_tokens=8)
    c = client(server, timeout=600)

    def ask(i: int) -> tuple[int, str, str]:
        reply = c.chat.completions.create(
            model="codit", messages=user(prompts[i]), temperature=0, max_tokens=8
        )
        return i, reply.id, reply.choices[0].message.content or ""

    with ThreadPoolExecutor(50) as pool:
        results = list(pool.map(ask, range(200)))
    assert sorted(i for i, _, _ in results) == list(range(200))
    assert len({rid for _, rid, _ in results}) == 200  # no reply handed out twice
    assert [text for _, _, text in results] == expected
    assert service.scheduler is not None and service.scheduler.in_flight() == 0


# ---- the codit: backend spec ------------------------------------------------------------
def test_codit_backend_specs_in_process_and_over_http_agree(tiny, offline) -> None:
    from codit.backends.base import GenerationParams
    from codit.backends.spec import BackendConfig, open_backend, parse_spec

    server, _ = tiny
    assert parse_spec(f"codit:{server.root}").base_url == server.url
    assert parse_spec("codit:a+b").kind == "codit"
    conversations = [user(p) for p in PROMPTS[:2]]
    params = GenerationParams(max_new_tokens=MAX_TOKENS)
    over_http = open_backend(f"codit:{server.root}").generate(conversations, params)
    local = open_backend("codit:tiny-instruct+tiny-base", BackendConfig(device="cpu"))
    assert local.kind == "codit" and local.model == "tiny-instruct+tiny-base"
    in_process = local.generate(conversations, params)
    expected = offline(PROMPTS[:2])
    assert [r.text for r in over_http] == [r.text for r in in_process] == expected


# ---- bad requests -------------------------------------------------------------------------
def test_bad_requests_get_openai_error_bodies_and_the_server_keeps_serving(tiny) -> None:
    server, _ = tiny
    good = {"model": "codit", "messages": user("hi"), "max_tokens": 3}

    def call(body: Any, path: str = "/v1/chat/completions") -> tuple[int, dict[str, Any]]:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        status, _, reply = post(server, path, raw)
        assert set(reply["error"]) == {"message", "type", "param", "code"}, reply
        return status, reply["error"]

    status, err = call(b'{"model": "codit", "messages": [')
    assert (status, err["code"]) == (400, "invalid_json")
    status, err = call({**good, "model": "gpt-4o"})
    assert (status, err["code"], err["param"]) == (404, "model_not_found", "model")
    status, err = call({**good, "max_tokens": 600})  # the tiny pair's context is 512
    assert (status, err["code"]) == (400, "context_length_exceeded")
    status, err = call({**good, "temperature": -0.5})
    assert (status, err["param"]) == (400, "temperature")
    status, err = call({"model": "codit"})
    assert (status, err["param"]) == (400, "messages")
    status, err = call({**good, "logprobs": True})
    assert (status, err["code"]) == (400, "unsupported_parameter")
    status, err = call({**good, "messages": [{"role": "user", "content": "x" * 2_000_000}]})
    assert status == 413
    status, err = call(good, "/v1/embeddings")
    assert status == 404
    with pytest.raises(openai.BadRequestError) as info:
        client(server).chat.completions.create(model="codit", messages=user("hi"), top_p=0)
    assert info.value.status_code == 400
    reply = client(server).chat.completions.create(**good)
    assert reply.choices[0].finish_reason in ("stop", "length")


# ---- servers over the fake engine ---------------------------------------------------------
@pytest.fixture(scope="module")
def tok() -> Any:
    return load_tokenizer("tiny-instruct")


def fake_server(tok: Any, engine: FakeEngine, **config: Any) -> tuple[BackgroundServer, Service]:
    settings = ServeConfig(**{"decoding": DecodingConfig(temperature=0), **config})
    served = ServedModel(tok, engine, None, {}, {})
    service = Service(settings, lambda: served)
    return BackgroundServer(create_app(service)).start(), service


def stream_request(server: BackgroundServer, max_tokens: int = 10**6) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    body = {"model": "codit", "messages": user("hi"), "stream": True, "max_tokens": max_tokens}
    conn.request(
        "POST", "/v1/chat/completions", json.dumps(body), {"Content-Type": "application/json"}
    )
    reply = conn.getresponse()
    assert reply.status == 200
    return reply


def test_queue_full_answers_429_with_retry_after(tok) -> None:
    engine = FakeEngine(tok, length=10**6, delay=0.002)
    server, service = fake_server(tok, engine, queue_size=2, max_tokens_limit=10**6)
    try:
        held = [stream_request(server), stream_request(server)]
        assert wait_until(lambda: engine.running() == 2)
        status, headers, body = post(
            server,
            "/v1/chat/completions",
            json.dumps({"model": "codit", "messages": user("x")}).encode(),
        )
        assert status == 429 and headers["retry-after"] == "1"
        assert body["error"]["code"] == "queue_full"
        with pytest.raises(openai.RateLimitError):
            client(server).chat.completions.create(model="codit", messages=user("x"))
        for reply in held:
            reply.close()
        assert wait_until(lambda: service.scheduler.in_flight() == 0)
        ok = client(server).chat.completions.create(model="codit", messages=user("x"), max_tokens=3)
        assert ok.usage.completion_tokens == 3
    finally:
        server.stop()


def test_a_client_that_disconnects_mid_stream_frees_its_slot(tok) -> None:
    engine = FakeEngine(tok, length=10**6, delay=0.002)
    server, service = fake_server(tok, engine, max_tokens_limit=10**6)
    try:
        reply = stream_request(server)
        assert reply.readline().startswith(b"data: ")  # the stream is under way
        assert wait_until(lambda: engine.running() == 1)
        reply.fp.raw._sock.shutdown(socket.SHUT_RDWR)  # the client goes away mid-stream
        reply.close()
        assert wait_until(lambda: engine.running() == 0)
        assert len(engine.cancelled) == 1 and engine.finished == []
        assert service.scheduler.in_flight() == 0 and service.scheduler.counts["cancelled"] == 1
    finally:
        server.stop()


def test_a_client_that_disconnects_before_a_whole_answer_frees_its_slot(tok) -> None:
    engine = FakeEngine(tok, length=10**6, delay=0.002)
    server, service = fake_server(tok, engine, max_tokens_limit=10**6)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        body = {"model": "codit", "messages": user("hi"), "max_tokens": 10**6}
        conn.request(
            "POST", "/v1/chat/completions", json.dumps(body), {"Content-Type": "application/json"}
        )
        assert wait_until(lambda: engine.running() == 1)
        conn.sock.shutdown(socket.SHUT_RDWR)
        conn.close()
        assert wait_until(lambda: engine.running() == 0) and len(engine.cancelled) == 1
        assert service.scheduler.in_flight() == 0
    finally:
        server.stop()


def test_health_says_loading_until_the_models_are_ready(tok) -> None:
    release = threading.Event()
    engine = FakeEngine(tok, length=2)

    def slow_load() -> ServedModel:
        release.wait(60)
        return ServedModel(tok, engine, None, {}, {})

    background = BackgroundServer(create_app(Service(ServeConfig(), slow_load)))
    background._thread.start()  # no waiting for readiness here
    try:
        assert wait_until(lambda: _status(background.port, "/health") == 503)
        status, headers, body = post(
            background,
            "/v1/chat/completions",
            json.dumps({"model": "codit", "messages": user("x")}).encode(),
        )
        assert status == 503 and body["error"]["code"] == "loading" and "retry-after" in headers
        release.set()
        assert wait_until(lambda: _status(background.port, "/health") == 200)
        assert client(background).chat.completions.create(model="codit", messages=user("x")).choices
    finally:
        release.set()
        background.stop()


def test_a_request_past_the_timeout_is_cancelled_with_504(tok) -> None:
    engine = FakeEngine(tok, length=10**6, delay=0.002)
    server, service = fake_server(tok, engine, request_timeout=0.5, max_tokens_limit=10**6)
    try:
        body = json.dumps({"model": "codit", "messages": user("x"), "max_tokens": 10**6})
        status, _, reply = post(server, "/v1/chat/completions", body.encode())
        assert status == 504 and reply["error"]["code"] == "timeout"
        assert wait_until(lambda: engine.running() == 0) and len(engine.cancelled) == 1
    finally:
        server.stop()


def test_api_key_is_required_and_checked(tok, monkeypatch) -> None:
    monkeypatch.setenv("CODIT_TEST_KEY", "s3cret-key")
    server, _ = fake_server(tok, FakeEngine(tok, length=3), api_key_env="CODIT_TEST_KEY")
    try:
        for key in ("wrong", ""):
            with pytest.raises(openai.AuthenticationError) as info:
                openai.OpenAI(
                    base_url=server.url,
                    api_key=key or "x",
                    max_retries=0,
                    default_headers={} if key else {"Authorization": ""},
                ).models.list()
            assert info.value.status_code == 401
        good = openai.OpenAI(base_url=server.url, api_key="s3cret-key", max_retries=0)
        assert good.chat.completions.create(model="codit", messages=user("x")).choices
        status, _, body = post(server, "/v1/chat/completions", b"{}")
        assert status == 401 and body["error"]["code"] == "invalid_api_key"
    finally:
        server.stop()


def test_seeded_samples_get_their_own_seeds_and_stable_keys(tok) -> None:
    engine = FakeEngine(tok, length=3)
    server, _ = fake_server(tok, engine)
    try:
        c = client(server)
        for _ in range(2):
            c.chat.completions.create(model="codit", messages=user("x"), n=3, seed=5)
        c.chat.completions.create(model="codit", messages=user("x"), n=2)
        seeded, unseeded = engine.added[:6], engine.added[6:]
        assert seeded[:3] == seeded[3:] and len(set(seeded[:3])) == 3
        assert [engine.settings[k].seed for k in seeded[:3]] == [5, 6, 7]
        assert len(set(unseeded)) == 2
    finally:
        server.stop()


# ---- SIGTERM ------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_sigterm_during_load_drains_and_exits_cleanly(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "codit", "serve", "--port", str(port), "--device", "cpu"]
    cmd += ["--temperature", "0", "--max-new-tokens", "24", "--shutdown-grace", "60"]
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen(cmd, env=env, stderr=log)
    server = BackgroundServer.__new__(BackgroundServer)  # only for .url/.port
    server.port = port
    try:
        assert wait_until(lambda: _healthy(port), timeout=120), "the server never became ready"
        started, finished, refused = [], [], []
        stop = threading.Event()

        def load(worker: int) -> None:
            c = client(server, timeout=120)
            i = 0
            while not stop.is_set():
                i += 1
                try:
                    stream = c.chat.completions.create(
                        model="codit", messages=user(f"{worker} {i} hello fox"), stream=True
                    )
                    started.append(1)
                    reasons = [ch.choices[0].finish_reason for ch in stream if ch.choices]
                    assert reasons[-1] in ("stop", "length")
                    finished.append(1)
                except openai.APIConnectionError:
                    refused.append(1)  # after SIGTERM: no new connections
                    return

        threads = [threading.Thread(target=load, args=(w,)) for w in range(8)]
        for t in threads:
            t.start()
        assert wait_until(lambda: len(finished) >= 8, timeout=120)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 0
        stop.set()
        for t in threads:
            t.join(60)
        # Every stream that started before the signal ran to its finish reason.
        assert len(finished) == len(started) and len(refused) == 8
        assert "server stopped" in (tmp_path / "serve.log").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()


def _status(port: int, path: str) -> int | None:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", path)
        status = conn.getresponse().status
        conn.close()
        return status
    except OSError:
        return None


def _healthy(port: int) -> bool:
    return _status(port, "/health") == 200
