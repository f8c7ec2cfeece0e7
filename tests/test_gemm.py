"""Few-row linear layers on CPU taken the other way round (``codit.decoding.gemm``)."""

from __future__ import annotations

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
def test_rows_first_equals_linear_in_the_window_and_is_linear_outside(bias, monkeypatch):
    torch.manual_seed(0)
    layer = torch.nn.Linear(48, 80, bias=bias)
    spies = {name: Spy(getattr(torch, name)) for name in ("mm", "addmm")}
    for name, spy in spies.items():
        monkeypatch.setattr(gemm.torch, name, spy)
    layers = gemm.linears(layer)
    assert [m for m, _ in layers] == [layer]
    for shape in [(1, 48), (4, 48), (7, 48), (8, 48), (2, 8, 48), (32, 48), (33, 48), (4, 16, 48)]:
        x = torch.randn(*shape)
        expected = F.linear(x, layer.weight, layer.bias)
        before = sum(s.calls for s in spies.values())
        with torch.inference_mode(), gemm.rows_first(layers):
            got = layer(x)
        taken = sum(s.calls for s in spies.values()) - before
        rows = x.numel() // 48
        assert got.shape == expected.shape and got.is_contiguous()
        if rows in gemm.ROWS:
            assert taken == 1, shape
            torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
        else:
            assert taken == 0, shape
            assert torch.equal(got, expected), shape
    assert "forward" not in layer.__dict__  # its own forward after the block


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
    """codit mode, fp32, 8 rows: the decoding steps run 8-row products the transposed way and
    give the tokens the engine gives with every layer on ``F.linear``."""
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
    fast = run(plain=False)
    assert spy.calls > 0  # the lm_heads have no bias: torch.mm at 8 rows
    assert fast == run(plain=True)
    assert all(len(t) == 10 for t in fast.values())
