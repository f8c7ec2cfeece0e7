"""Few-row linear layers on CPU in whichever GEMM measured faster (``codit.decoding.gemm``)."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import tiny_models
from codit.decoding import gemm
from codit.decoding.config import DecodingConfig
from codit.decoding.engine import PairEngine
from test_engine import PROMPTS, requests

PINNED = re.search(r"torch==([\d.]+)", (Path(__file__).parents[1] / "Makefile").read_text())


def test_onednn_linear_is_there_on_the_torch_the_makefile_pins():
    """The oneDNN way rests on a private torch op: on the pinned torch it must be found and
    agree with ``F.linear``; this fails loudly when a new torch moves or changes it."""
    assert PINNED, "the Makefile no longer pins torch"
    if torch.__version__.split("+")[0] != PINNED.group(1):
        pytest.skip(f"torch {torch.__version__} here, the Makefile pins {PINNED.group(1)}")
    assert torch.backends.mkldnn.is_available()
    assert gemm.ONEDNN is not None, "torch.ops.mkldnn._linear_pointwise is gone or changed"
    assert len(gemm.WAYS) == len(gemm.NAMES) == 3


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("shape", [(1, 48), (4, 48), (2, 8, 48), (64, 48), (4, 16, 48)])
def test_every_way_gives_the_linear_result(bias, shape):
    torch.manual_seed(0)
    layer = torch.nn.Linear(48, 80, bias=bias)
    rows = math.prod(shape[:-1])
    x = torch.randn(*shape)
    strided = torch.randn(*shape[:-1], 96)[..., ::2]  # not contiguous, as a view may be
    with torch.inference_mode():
        for way in gemm.WAYS:
            for inp in (x, strided):
                got = way(layer, inp, rows)
                assert got.shape == (*shape[:-1], 80) and got.is_contiguous(), way
                torch.testing.assert_close(got, F.linear(inp, layer.weight, layer.bias))


class Ways:
    """Stand-in ways that note which ran and give ``F.linear``'s result; a clock that charges
    each call the seconds of the way that ran in it."""

    def __init__(self, seconds: list[float]):
        self.seconds, self.ran, self.now = seconds, [], 0.0
        self.ways = tuple(self._way(i) for i in range(len(seconds)))

    def _way(self, i: int):
        def way(layer, x, rows):
            self.ran.append(i)
            return F.linear(x, layer.weight, layer.bias)

        return way

    def clock(self) -> float:
        if self.ran and self.ran[-1] is not None:
            self.now += self.seconds[self.ran[-1]]
            self.ran.append(None)  # charged
        return self.now


@pytest.mark.parametrize("fastest", [0, 1, 2])
def test_a_layer_tries_each_way_then_keeps_the_fastest(fastest):
    seconds = [3.0, 3.0, 3.0]
    seconds[fastest] = 1.0
    fake = Ways(seconds)
    layer = torch.nn.Linear(16, 24, bias=False)
    choices: dict = {}
    layers = gemm.linears(layer, clock=fake.clock, choices=choices, ways=fake.ways)
    x = torch.randn(8, 16)
    with torch.inference_mode(), gemm.rows_first(layers):
        for _ in range(3 * gemm.TRIALS):
            assert gemm.chosen(choices) == {}  # still on trial
            layer(x)
        expected = [0, 0, 0]
        expected[fastest] = 1
        assert gemm.chosen(choices) == {8: tuple(expected)}
        trials = [i for i in fake.ran if i is not None]
        assert sorted(trials) == sorted(list(range(3)) * gemm.TRIALS)
        del fake.ran[:]
        for _ in range(4):
            layer(x)
    assert [i for i in fake.ran if i is not None] == [fastest] * 4
    assert "forward" not in layer.__dict__  # its own forward after the block


def test_more_rows_or_autograd_take_f_linear_untimed():
    fake = Ways([1.0, 1.0, 1.0])
    layer = torch.nn.Linear(16, 24)
    choices: dict = {}
    layers = gemm.linears(layer, clock=fake.clock, choices=choices, ways=fake.ways)
    with gemm.rows_first(layers):
        with torch.inference_mode():
            x = torch.randn(gemm.ROWS.stop, 16)
            assert torch.equal(layer(x), F.linear(x, layer.weight, layer.bias))
        layer(torch.randn(4, 16)).sum().backward()  # autograd on: F.linear, grads as usual
    assert fake.ran == [] and choices == {}
    assert layer.weight.grad is not None


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
    """codit mode, fp32, 8 rows: with every layer held to any one way, and with the layers
    choosing, the engine gives the tokens it gives with every layer on ``F.linear``."""
    instruct, base = (tiny_models.make_model(tokenizer, s) for s in (1, 2))
    prompts = (PROMPTS * 2)[:8]
    config = DecodingConfig(mode="codit", alpha=0.1, beta=0.5, temperature=0.0, max_new_tokens=10)

    def run(ways: tuple | None = None, plain: bool = False) -> dict[str, list[int]]:
        engine = PairEngine(instruct, base, tokenizer, config, [], len(tokenizer), batch_size=8)
        if plain:
            engine._linears = [[] for _ in engine.models]
        elif ways is not None:  # one way only: its trials, then it
            engine._linears = [gemm.linears(m, choices={}, ways=ways) for m in engine.models]
        return {c.key: c.token_ids for c in engine.generate(requests(tokenizer, prompts))}

    expected = run(plain=True)
    assert all(len(t) == 10 for t in expected.values())
    for way in gemm.WAYS:
        assert run((way,)) == expected, way
    monkeypatch.setattr(gemm, "CHOICES", {})  # measured afresh, whatever ran before
    assert run() == expected
    assert sum(map(sum, gemm.chosen().values())) > 0  # the layers did choose
