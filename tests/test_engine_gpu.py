"""The CUDA-graph decoding step against the same step run eagerly (needs CUDA)."""

from __future__ import annotations

import pytest
import torch

from codit.decoding.config import DecodingConfig
from codit.decoding.engine import PairEngine, Request
from test_engine import requests

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("mode", ["codit", "direct"])
def test_graph_replay_equals_eager_token_for_token(tokenizer, dtype, mode):
    import tiny_models

    models = [tiny_models.make_model(tokenizer, s).to("cuda", dtype) for s in (1, 2)]
    config = DecodingConfig(mode=mode, temperature=0.0, max_new_tokens=40)
    base = requests(tokenizer)
    # mixed lengths: rows leave and join, so several width and span buckets are replayed
    reqs = [Request(f"{r.key}-{i}", r.prompt_ids, 5 + (7 * i) % 36) for i, r in enumerate(base * 3)]
    out = {}
    for graphs in (False, True):
        engine = PairEngine(
            models[0],
            models[1] if mode == "codit" else None,
            tokenizer,
            config,
            [tokenizer.eos_token_id],
            len(tokenizer),
            batch_size=4,
        )
        engine.cuda_graphs = graphs
        out[graphs] = {c.key: c.token_ids for c in engine.generate(reqs)}
        if graphs:
            assert engine._graphs is not None and len(engine._graphs.graphs) >= 2
            assert not engine._graphs.eager, "a step fell back to eager"
    assert out[True] == out[False]


def test_sampled_graph_replay_equals_eager(tokenizer):
    import tiny_models

    models = [tiny_models.make_model(tokenizer, s).to("cuda") for s in (1, 2)]
    config = DecodingConfig(mode="codit", temperature=1.0, top_p=0.9, max_new_tokens=24, seed=2)
    out = {}
    for graphs in (False, True):
        engine = PairEngine(
            models[0], models[1], tokenizer, config, [tokenizer.eos_token_id], len(tokenizer), 3
        )
        engine.cuda_graphs = graphs
        out[graphs] = {c.key: c.token_ids for c in engine.generate(requests(tokenizer))}
    assert out[True] == out[False]
