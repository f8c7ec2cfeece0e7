"""Few-row linear layers on CPU taken the other way round (``codit.decoding.gemm``)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import tiny_models
from codit.decoding import gemm
from codit.decoding.config import DecodingConfig
from codit.decoding.engine import PairEngine
from test_engine import PROMPTS, requests


class Spy:
    """Counts calls of a torch function and passes them on."""

    def __init__(self, fn):
        self.fn, self.calls = fn, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.fn(*args, **kwargs)


@pytest.mark.parametrize("bias", [True, False])
def test_a_layer_gives_linear_results_either_way_and_is_linear_outside_its_rows(bias, monkeypatch):
    torch.manual_seed(0)
    layer = torch.nn.Linear(48, 80, bias=bias)
    spies = {name: Spy(getattr(torch, name)) for name in ("mm", "addmm")}
    for name, spy in spies.items():
        monkeypatch.setattr(gemm.torch, name, spy)
    choices: dict = {}
    layers = gemm.linears(layer, choices=choices)
    assert [m for m, _ in layers] == [layer]
    for shape in [(1, 48), (4, 48), (2, 8, 48), (64, 48), (65, 48), (4, 32, 48)]:
        rows = math.prod(shape[:-1])
        before = sum(s.calls for s in spies.values())
        for _ in range(2 * gemm.TRIALS + 2):  # the trials, then the chosen way
            x = torch.randn(*shape)
            expected = F.linear(x, layer.weight, layer.bias)
            with torch.inference_mode(), gemm.rows_first(layers):
                got = layer(x)
            assert got.shape == expected.shape and got.is_contiguous()
            if rows in gemm.ROWS:
                torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
            else:
                assert torch.equal(got, expected), shape
        taken = sum(s.calls for s in spies.values()) - before
        if rows in gemm.ROWS:  # the transposed trials, and the calls after them if it won
            assert taken in (gemm.TRIALS, gemm.TRIALS + 2), shape
        else:
            assert taken == 0, shape
    assert "forward" not in layer.__dict__  # its own forward after the block
    assert set(gemm.chosen(choices)) == {4, 16, 64}


class Clock:
    """A fake clock: each call of the layer takes ``plain`` or ``transposed`` seconds, told
    apart by whether ``torch.mm`` ran since the last reading."""

    def __init__(self, plain: float, transposed: float, spy: Spy):
        self.seconds, self.spy, self.now, self.seen = (plain, transposed), spy, 0.0, 0

    def __call__(self) -> float:
        if self.spy.calls != self.seen:  # a transposed call just ended
            self.now += self.seconds[1]
            self.seen = self.spy.calls
        else:
            self.now += self.seconds[0]
        return self.now


@pytest.mark.parametrize(
    ("plain", "transposed", "chosen"), [(2.0, 1.0, (0, 1)), (1.0, 2.0, (1, 0))]
)
def test_a_layer_keeps_the_way_that_was_faster_in_its_trials(
    plain, transposed, chosen, monkeypatch
):
    spy = Spy(torch.mm)
    monkeypatch.setattr(gemm.torch, "mm", spy)
    layer = torch.nn.Linear(16, 24, bias=False)
    choices: dict = {}
    layers = gemm.linears(layer, clock=Clock(plain, transposed, spy), choices=choices)
    x = torch.randn(8, 16)
    with gemm.rows_first(layers):
        for _ in range(2 * gemm.TRIALS):
            assert gemm.chosen(choices) == {}  # still on trial
            layer(x)
        assert gemm.chosen(choices) == {8: chosen}
        calls = spy.calls
        for _ in range(3):
            layer(x)
    assert spy.calls - calls == (3 if chosen == (0, 1) else 0)
    assert spy.calls >= gemm.TRIALS


def test_only_float32_cpu_linears_without_a_replaced_forward_take_part():
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 4), torch.nn.ReLU())
    hooked = model[1]
    own = hooked.forward
    hooked.forward = own  # what an accelerate hook does: a forward on the instance
    layers = gemm.linears(model)
    assert [m for m, _ in layers] == [model[0]]
    with gemm.rows_first(layers):
        assert hooked.__dict__["forward"] is own
    assert hooked.__dict__["forward"] is own
    assert gemm.linears(torch.nn.Linear(4, 4).double()) == []


def test_engine_tokens_are_those_of_the_plain_linear_at_a_batch_of_eight(tokenizer, monkeypatch):
    """codit mode, fp32, 8 rows: whichever way each layer chooses, the engine gives the tokens it
    gives with every layer on ``F.linear``."""
    instruct, base = (tiny_models.make_model(tokenizer, s) for s in (1, 2))
    prompts = (PROMPTS * 2)[:8]
    config = DecodingConfig(mode="codit", alpha=0.1, beta=0.5, temperature=0.0, max_new_tokens=10)

    def run(plain: bool) -> dict[str, list[int]]:
        engine = PairEngine(instruct, base, tokenizer, config, [], len(tokenizer), batch_size=8)
        if plain:
            engine._linears = [[] for _ in engine.models]
        return {c.key: c.token_ids for c in engine.generate(requests(tokenizer, prompts))}

    spy = Spy(torch.mm)
    monkeypatch.setattr(gemm.torch, "mm", spy)
    monkeypatch.setattr(gemm, "CHOICES", {})  # measured afresh, whatever ran before
    fast = run(plain=False)
    assert spy.calls > 0  # the lm_heads have no bias: torch.mm in their trials
    assert fast == run(plain=True)
    assert all(len(t) == 10 for t in fast.values())
