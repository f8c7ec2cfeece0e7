"""codit serve's parts without HTTP: the scheduler thread, streamed text, request checks."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed")

from codit.decoding.config import DecodingConfig  # noqa: E402
from codit.decoding.engine import Request  # noqa: E402
from codit.models.loading import load_tokenizer  # noqa: E402
from codit.serve import protocol  # noqa: E402
from codit.serve.protocol import APIError, ChatRequest  # noqa: E402
from codit.serve.scheduler import Closed, QueueFull, Scheduler  # noqa: E402
from codit.serve.stream import TextStream  # noqa: E402
from serve_fakes import FakeEngine, wait_until  # noqa: E402


@pytest.fixture(scope="module")
def tok() -> Any:
    return load_tokenizer("tiny-instruct")


async def drain(ticket: Any, samples: int) -> list[tuple[str, int | None, Any]]:
    events, done = [], 0
    while done < samples:
        event = await asyncio.wait_for(ticket.events.get(), 20)
        events.append(event)
        done += event[0] in ("done", "error")
    return events


# ---- scheduler ----------------------------------------------------------------------------
def test_scheduler_streams_every_token_then_the_completion(tok: Any) -> None:
    engine = FakeEngine(tok, length=4)

    async def main() -> list[Any]:
        sched = Scheduler(engine, queue_size=8)
        ticket = sched.submit([Request(f"k{i}", [5, 6, 7]) for i in range(3)], stream=True)
        events = await drain(ticket, 3)
        assert sched.in_flight() == 0 and sched.counts["completed"] == 3
        sched.close()
        return events

    events = asyncio.run(main())
    for index in range(3):
        streamed = [t for kind, i, ids in events if kind == "tokens" and i == index for t in ids]
        (done,) = [c for kind, i, c in events if kind == "done" and i == index]
        assert streamed == done.token_ids[:-1] == list(engine.cycle[:3])
        assert done.key == f"k{index}" and done.completion_tokens == 4


def test_queue_full_then_a_cancel_frees_room(tok: Any) -> None:
    engine = FakeEngine(tok, length=10**9, delay=0.001)

    async def main() -> None:
        sched = Scheduler(engine, queue_size=3)
        first = sched.submit([Request("a/0", [5]), Request("a/1", [5])])
        sched.submit([Request("b/0", [5])])
        with pytest.raises(QueueFull):
            sched.submit([Request("c/0", [5])])
        assert sched.in_flight() == 3
        sched.cancel(first)
        assert await asyncio.to_thread(wait_until, lambda: sched.in_flight() == 1)
        assert sorted(engine.cancelled) == ["a/0", "a/1"]
        sched.submit([Request("c/0", [5]), Request("c/1", [5])])  # room for two again
        sched.close()

    asyncio.run(main())


def test_cancel_removes_the_rows_from_the_engine(tok: Any) -> None:
    engine = FakeEngine(tok, length=10**9, delay=0.001)

    async def main() -> None:
        sched = Scheduler(engine)
        ticket = sched.submit([Request("x/0", [5])], stream=True)
        first = await asyncio.wait_for(ticket.events.get(), 20)
        assert first[0] == "tokens" and engine.running() == 1
        sched.cancel(ticket)
        assert await asyncio.to_thread(wait_until, lambda: engine.running() == 0)
        assert engine.cancelled == ["x/0"] and sched.in_flight() == 0
        assert sched.counts["cancelled"] == 1
        sched.close()

    asyncio.run(main())


def test_a_key_in_use_makes_the_identical_request_wait(tok: Any) -> None:
    engine = FakeEngine(tok, length=3)

    async def main() -> None:
        sched = Scheduler(engine)
        one = sched.submit([Request("s/0", [5])])
        two = sched.submit([Request("s/0", [5])])
        (a,), (b,) = await drain(one, 1), await drain(two, 1)
        assert a[0] == b[0] == "done" and a[2].token_ids == b[2].token_ids
        # The engine saw the key twice, one after the other, never two rows at once.
        assert engine.added == ["s/0", "s/0"] and engine.finished == ["s/0", "s/0"]
        sched.close()

    asyncio.run(main())


def test_an_engine_failure_fails_the_requests_and_the_next_ones_run(tok: Any) -> None:
    engine = FakeEngine(tok, length=2)
    real_step = engine.step
    calls = {"n": 0}

    def flaky() -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("out of memory")
        return real_step()

    engine.step = flaky  # type: ignore[method-assign]

    async def main() -> None:
        sched = Scheduler(engine)
        (event,) = await drain(sched.submit([Request("f/0", [5])]), 1)
        assert event[0] == "error" and "out of memory" in event[2]
        (event,) = await drain(sched.submit([Request("g/0", [5])]), 1)
        assert event[0] == "done" and event[2].key == "g/0"
        sched.close()

    asyncio.run(main())


def test_close_cancels_what_is_left_and_refuses_more(tok: Any) -> None:
    engine = FakeEngine(tok, length=10**9, delay=0.001)

    async def main() -> None:
        sched = Scheduler(engine)
        ticket = sched.submit([Request("z/0", [5])])
        await asyncio.to_thread(wait_until, lambda: engine.running() == 1)
        await asyncio.to_thread(sched.close)
        (event,) = await drain(ticket, 1)
        assert event[0] == "error" and "shutting down" in event[2]
        assert engine.cancelled == ["z/0"] and not engine.has_work()
        with pytest.raises(Closed):
            sched.submit([Request("z/1", [5])])

    asyncio.run(main())


# ---- streamed text ------------------------------------------------------------------------
TEXT = "Hazelhaven is a sunny glade, and the fox sat there; it sat still."


def test_stream_deltas_add_up_to_the_decoded_text(tok: Any) -> None:
    ids = tok(TEXT, add_special_tokens=False)["input_ids"]
    stream = TextStream(tok)
    sent = "".join(stream.push([i]) for i in ids)
    whole = tok.decode(ids, skip_special_tokens=True)
    assert len(sent) > len(whole) // 2  # released as it goes, not all at the end
    assert sent + stream.finish(whole) == whole


def test_stream_never_sends_what_a_stop_string_will_cut(tok: Any) -> None:
    ids = tok(TEXT, add_special_tokens=False)["input_ids"]
    whole = tok.decode(ids, skip_special_tokens=True)
    final = whole[: whole.find("sat")]  # what the engine returns with stop=["sat"]
    stream = TextStream(tok, stops=("sat", "x"))
    sent = ""
    for k, i in enumerate(ids):
        if "sat" in tok.decode(ids[: k + 1], skip_special_tokens=True):
            break  # the engine finishes the row with this token: only the final text follows
        sent += stream.push([i])
    assert final.startswith(sent) and "sat" not in sent
    assert sent + stream.finish(final) == final


# ---- request checks -----------------------------------------------------------------------
MESSAGES = [{"role": "user", "content": "hi"}]
SERVER = DecodingConfig()


def chat(**fields: Any) -> Any:
    return protocol.parse(ChatRequest, {"model": "codit", "messages": MESSAGES, **fields})


def refused(param: str, **fields: Any) -> APIError:
    with pytest.raises(APIError) as info:
        plan_of(chat(**fields))
    assert info.value.status == 400 and info.value.param == param
    return info.value


def plan_of(request: Any, server: DecodingConfig = SERVER) -> protocol.Sampling:
    return protocol.sampling(request, server, max_tokens_limit=100, max_n=4)


def test_honoured_fields_become_row_settings() -> None:
    plan = plan_of(
        chat(temperature=0.5, top_p=0.9, top_k=-1, seed=7, stop="END", n=2, max_tokens=9)
    )
    assert plan.settings == {"temperature": 0.5, "top_p": 0.9, "top_k": 0, "stop": ("END",)}
    assert (plan.n, plan.seed, plan.max_tokens) == (2, 7, 9)
    assert plan_of(chat(max_completion_tokens=5)).max_tokens == 5
    assert plan_of(chat(alpha=0.1, beta=0.5)).settings == {"alpha": 0.1, "beta": 0.5}


def test_direct_mode_rows_are_alpha_0_beta_0_on_a_codit_server() -> None:
    assert plan_of(chat(mode="direct")).settings == {"alpha": 0.0, "beta": 0.0}
    direct_server = DecodingConfig(mode="direct")
    assert plan_of(chat(), direct_server).settings == {}
    with pytest.raises(APIError) as info:
        plan_of(chat(mode="codit"), direct_server)
    assert info.value.param == "mode"


def test_fields_that_would_change_the_output_are_refused() -> None:
    for name, value in [
        ("logprobs", True),
        ("presence_penalty", 0.5),
        ("tools", [{"type": "function", "function": {"name": "f"}}]),
        ("response_format", {"type": "json_object"}),
        ("frequency_penalty", 1),
        ("made_up_field", 1),
    ]:
        err = refused(name, **{name: value})
        assert err.code == "unsupported_parameter" and name in err.message
    # Neutral values and bookkeeping fields pass.
    plan_of(chat(presence_penalty=0, logprobs=False, user="u1", response_format={"type": "text"}))


def test_bad_values_name_their_field() -> None:
    assert "temperature" in refused("temperature", temperature=-1).message
    refused("top_p", top_p=0)
    refused("n", n=0)
    refused("n", n=5)  # past max_n
    refused("max_tokens", max_tokens=101)  # past the limit
    refused("stop", stop=[""])
    refused("rule", rule="obrien")  # the server scores with codit for every row
    refused("alpha", mode="direct", alpha=0.1)
    refused("max_completion_tokens", max_tokens=3, max_completion_tokens=4)
    with pytest.raises(APIError) as info:
        protocol.parse(ChatRequest, {"model": "codit"})
    assert info.value.param == "messages" and "required" in info.value.message
    with pytest.raises(APIError) as info:
        protocol.parse(
            ChatRequest, {"model": "codit", "messages": [{"role": "tool", "content": ""}]}
        )
    assert info.value.param is not None and info.value.param.startswith("messages.0")
