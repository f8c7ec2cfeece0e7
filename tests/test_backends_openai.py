"""The openai backend against a real HTTP server on 127.0.0.1 with scripted replies."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest

from codit.backends.base import GenerationParams
from codit.backends.cache import ResponseCache, cache_key
from codit.backends.openai import OpenAIBackend
from codit.backends.spec import BackendConfig, BackendSpec, open_backend, parse_spec
from codit.errors import BackendError, ConfigError, RateLimited
from fakeserver import FakeServer, Reply, echo, last_user

PARAMS = GenerationParams(max_new_tokens=32)


def conv(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


@pytest.fixture
def server():
    with FakeServer() as s:
        yield s


def backend(server: FakeServer, **kwargs) -> OpenAIBackend:
    settings = {"max_retries": 2, "retry_delay": 0.01, "timeout": 5.0} | kwargs
    return OpenAIBackend("fake-model", server.url, **settings)


def test_answers_in_input_order_with_the_right_request(server: FakeServer) -> None:
    params = GenerationParams(max_new_tokens=7, temperature=0.5, top_p=0.9, top_k=20, seed=3)
    results = backend(server).generate([conv("one"), conv("two"), conv("three")], params)
    assert [r.text for r in results] == ["echo: one", "echo: two", "echo: three"]
    assert all(r.error is None and r.finish_reason == "stop" and not r.cached for r in results)
    assert results[0].prompt_tokens == 7 and results[0].completion_tokens == 2
    body = server.requests[0]
    assert body["model"] == "fake-model" and body["max_tokens"] == 7
    assert (body["temperature"], body["top_p"], body["top_k"], body["seed"]) == (0.5, 0.9, 20, 3)


def test_concurrency_is_bounded(server: FakeServer) -> None:
    server.script = lambda body, n: Reply(text=last_user(body), delay=0.1)
    texts = [f"q{i}" for i in range(12)]
    results = backend(server, concurrency=3).generate([conv(t) for t in texts], PARAMS)
    assert [r.text for r in results] == texts
    assert server.max_in_flight == 3


def test_429_then_success(server: FakeServer) -> None:
    server.script = lambda body, n: (
        Reply(status=429, headers={"Retry-After": "0"}) if n == 0 else echo(body, n)
    )
    [result] = backend(server).generate([conv("hi")], PARAMS)
    assert result.text == "echo: hi" and len(server.requests) == 2


def test_429_forever_raises_rate_limited(server: FakeServer) -> None:
    server.script = lambda body, n: Reply(status=429, error="slow down")
    with pytest.raises(RateLimited, match="429"):
        backend(server, max_retries=2).generate([conv("hi")], PARAMS)
    assert len(server.requests) == 3  # the first try and two retries


def test_500_is_retried_then_raised(server: FakeServer) -> None:
    server.script = lambda body, n: Reply(status=500) if n < 2 else echo(body, n)
    assert backend(server).generate([conv("hi")], PARAMS)[0].text == "echo: hi"
    server.requests.clear()
    server.script = lambda body, n: Reply(status=503, error="overloaded")
    with pytest.raises(BackendError, match="HTTP 503"):
        backend(server, max_retries=1).generate([conv("hi")], PARAMS)
    assert len(server.requests) == 2


def test_timeout_is_retried_then_raised(server: FakeServer) -> None:
    server.script = lambda body, n: Reply(delay=1.0) if n == 0 else echo(body, n)
    assert backend(server, timeout=0.3).generate([conv("hi")], PARAMS)[0].text == "echo: hi"
    server.script = lambda body, n: Reply(delay=1.0)
    with pytest.raises(BackendError, match="did not answer within 0.3 s"):
        backend(server, timeout=0.3, max_retries=1).generate([conv("hi")], PARAMS)


@pytest.mark.parametrize(
    "body", [b"{not json", b"<html>502 Bad Gateway</html>", b'{"choices": []}', b"{}"]
)
def test_malformed_reply_is_retried_then_recorded(server: FakeServer, body: bytes) -> None:
    server.script = lambda req, n: Reply(body=body) if last_user(req) == "bad" else echo(req, n)
    results = backend(server, max_retries=1).generate([conv("bad"), conv("good")], PARAMS)
    assert results[0].error is not None and results[0].finish_reason == "error"
    assert results[0].text == ""
    assert results[1].text == "echo: good" and results[1].error is None
    assert sum(last_user(r) == "bad" for r in server.requests) == 2


def test_malformed_then_good_reply_succeeds(server: FakeServer) -> None:
    server.script = lambda body, n: Reply(body=b"garbage") if n == 0 else echo(body, n)
    assert backend(server).generate([conv("x")], PARAMS)[0].text == "echo: x"


def test_empty_replies_are_valid_answers(server: FakeServer) -> None:
    server.script = lambda body, n: Reply(
        text="" if last_user(body) == "a" else None, finish_reason="length"
    )
    results = backend(server).generate([conv("a"), conv("b")], PARAMS)
    assert [(r.text, r.finish_reason, r.error) for r in results] == [("", "length", None)] * 2
    assert len(server.requests) == 2


def test_request_errors_are_recorded_not_raised(server: FakeServer) -> None:
    def script(body: dict, n: int) -> Reply:
        if last_user(body) == "long":
            return Reply(status=400, error="This model's maximum context length is 8 tokens")
        if last_user(body) == "odd":
            return Reply(status=422, error="unsupported parameter")
        return echo(body, n)

    server.script = script
    results = backend(server).generate([conv("long"), conv("odd"), conv("ok")], PARAMS)
    assert "context window" in results[0].error
    assert "HTTP 422" in results[1].error
    assert results[2].text == "echo: ok"
    assert len(server.requests) == 3  # no retries for requests the server rejected


def test_refused_key_stops_at_once_and_never_shows_the_key(
    server: FakeServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    secret = "sk-test-do-not-leak-12345"
    monkeypatch.setenv("CODIT_TEST_KEY", secret)
    server.script = lambda body, n: Reply(status=500) if n == 0 else Reply(status=401)
    cache = ResponseCache(tmp_path / "cache.sqlite")
    with caplog.at_level(logging.DEBUG), pytest.raises(BackendError) as info:
        backend(server, api_key_env="CODIT_TEST_KEY", cache=cache).generate([conv("x")], PARAMS)
    assert "CODIT_TEST_KEY" in str(info.value) and secret not in str(info.value)
    assert server.authorization[0] == f"Bearer {secret}"  # the key is sent to the server ...
    assert secret not in caplog.text  # ... and appears nowhere else
    assert secret.encode() not in (tmp_path / "cache.sqlite").read_bytes()
    assert len(server.requests) == 2


def test_missing_key_sends_a_placeholder(
    server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CODIT_NO_SUCH_KEY", raising=False)
    backend(server, api_key_env="CODIT_NO_SUCH_KEY").generate([conv("x")], PARAMS)
    assert server.authorization == ["Bearer no-key-set"]


def test_cache_reuses_finished_calls(server: FakeServer, tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path / "cache.sqlite")
    first = backend(server, cache=cache).generate([conv("a"), conv("b")], PARAMS)
    again = backend(server, cache=ResponseCache(tmp_path / "cache.sqlite")).generate(
        [conv("b"), conv("a"), conv("c")], PARAMS
    )
    assert [r.text for r in again] == ["echo: b", "echo: a", "echo: c"]
    assert [r.cached for r in again] == [True, True, False]
    assert not any(r.cached for r in first)
    assert len(server.requests) == 3
    backend(server, cache=cache).generate([conv("a")], GenerationParams(max_new_tokens=33))
    assert len(server.requests) == 4  # other parameters, other key


def test_failed_requests_are_not_cached(server: FakeServer, tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path / "cache.sqlite")
    server.script = lambda body, n: Reply(status=400, error="no") if n == 0 else echo(body, n)
    assert backend(server, cache=cache).generate([conv("a")], PARAMS)[0].error is not None
    assert backend(server, cache=cache).generate([conv("a")], PARAMS)[0].text == "echo: a"
    assert len(cache) == 1


def test_server_dying_midway_then_rerun_completes_from_cache(tmp_path: Path) -> None:
    conversations = [conv(f"q{i}") for i in range(10)]
    cache_path = tmp_path / "cache.sqlite"
    with FakeServer() as dying:

        def script(body: dict, n: int) -> Reply:
            if n < 4:
                return echo(body, n)
            dying.stop_soon()
            return Reply(drop=True)

        dying.script = script
        with pytest.raises(BackendError, match="cannot reach"):
            backend(dying, concurrency=2, cache=ResponseCache(cache_path)).generate(
                conversations, PARAMS
            )
    finished = {last_user(b) for b in dying.requests[:4]}
    assert len(ResponseCache(cache_path)) == 4

    with FakeServer() as healthy:
        results = backend(healthy, concurrency=2, cache=ResponseCache(cache_path)).generate(
            conversations, PARAMS
        )
    assert [r.text for r in results] == [f"echo: q{i}" for i in range(10)]
    asked_again = {last_user(b) for b in healthy.requests}
    assert len(healthy.requests) == 6 and not asked_again & finished
    assert sum(r.cached for r in results) == 4


def test_cache_is_safe_across_threads(tmp_path: Path) -> None:
    from codit.backends.base import TextResult

    cache = ResponseCache(tmp_path / "cache.sqlite")

    def work(t: int) -> None:
        for i in range(50):
            key = cache_key("openai", "m", PARAMS, conv(f"{t}-{i}"))
            cache.put(key, "openai", "m", TextResult(f"{t}-{i}", "stop"))
            assert cache.get(key).text == f"{t}-{i}"

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(cache) == 400


def test_cache_key_depends_on_every_part() -> None:
    base = cache_key("openai", "m", PARAMS, conv("x"))
    assert base == cache_key("openai", "m", GenerationParams(max_new_tokens=32), conv("x"))
    assert base != cache_key("local", "m", PARAMS, conv("x"))
    assert base != cache_key("openai", "m2", PARAMS, conv("x"))
    assert base != cache_key("openai", "m", GenerationParams(max_new_tokens=32, seed=1), conv("x"))
    assert base != cache_key("openai", "m", PARAMS, conv("y"))


def test_parse_spec() -> None:
    assert parse_spec("openai:qwen3-8b@http://localhost:8000/v1") == BackendSpec(
        "openai", "qwen3-8b", "http://localhost:8000/v1"
    )
    assert parse_spec("openai:gpt-4o") == BackendSpec("openai", "gpt-4o", None)
    assert parse_spec("local:/models/My Model") == BackendSpec("local", "/models/My Model")
    assert str(parse_spec("openai:m@https://h/v1")) == "openai:m@https://h/v1"
    for bad in ("qwen3-8b", "openai:", "local:", "openai:m@localhost:8000", "vllm:m@http://h"):
        with pytest.raises(ConfigError, match="local:MODEL_OR_PATH or openai:MODEL@BASE_URL"):
            parse_spec(bad)


def test_open_backend_builds_a_cached_openai_backend(server: FakeServer, tmp_path: Path) -> None:
    config = BackendConfig(cache=str(tmp_path / "c.sqlite"), max_retries=0, concurrency=2)
    built = open_backend(f"openai:m@{server.url}", config)
    assert built.kind == "openai" and built.model == "m"
    assert built.generate([conv("z")], PARAMS)[0].text == "echo: z"
    assert built.generate([conv("z")], PARAMS)[0].cached
    with pytest.raises(ConfigError, match="--concurrency"):
        BackendConfig(concurrency=0)
