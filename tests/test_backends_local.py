"""The local backend through codit's engine, on the tiny random pair the tests build."""

from __future__ import annotations

from pathlib import Path

from codit.backends.base import GenerationParams
from codit.backends.cache import ResponseCache
from codit.backends.local import LocalBackend
from codit.backends.spec import BackendConfig, open_backend

PARAMS = GenerationParams(max_new_tokens=4)
CONVERSATIONS = [
    [{"role": "user", "content": "write three bullet points about apples"}],
    [{"role": "user", "content": "the quick brown fox"}],
    [{"role": "user", "content": "all lowercase letters please"}],
]


def test_local_backend_generates_in_order_and_caches(
    pair_dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    instruct, _ = pair_dirs
    cache = ResponseCache(tmp_path / "cache.sqlite")
    backend = LocalBackend(str(instruct), device="cpu", batch_size=2, cache=cache)
    results = backend.generate(CONVERSATIONS, PARAMS)
    assert len(results) == 3
    assert all(r.error is None and not r.cached and 1 <= r.completion_tokens <= 4 for r in results)
    assert all(r.prompt_tokens > 0 for r in results)
    # Greedy decoding is deterministic: one conversation alone gives the same text.
    alone = LocalBackend(str(instruct), device="cpu").generate(CONVERSATIONS[1:2], PARAMS)
    assert alone[0].text == results[1].text
    again = LocalBackend(str(instruct), device="cpu", cache=cache).generate(CONVERSATIONS, PARAMS)
    assert [r.text for r in again] == [r.text for r in results]
    assert all(r.cached for r in again)


def test_local_spec_builds_a_lazy_backend(pair_dirs: tuple[Path, Path]) -> None:
    instruct, _ = pair_dirs
    backend = open_backend(f"local:{instruct}", BackendConfig(device="cpu", batch_size=3))
    assert backend.kind == "local" and backend.model == str(instruct)
    assert backend._generator is None  # nothing is loaded before the first call
