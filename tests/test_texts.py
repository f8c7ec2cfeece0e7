"""`LocalGenerator`: conversations in, texts out, in input order, same tokens as the engine."""

from __future__ import annotations

import pytest

from codit.errors import ConfigError
from codit.generation.texts import LocalGenerator


def test_local_generator_answers_in_order_in_both_modes(pair_dirs):
    instruct, base = (str(p) for p in pair_dirs)
    gen = LocalGenerator(instruct, base, device="cpu")
    convs = [
        [{"role": "user", "content": t}] for t in ["hello fox", "a", "write three bullet points"]
    ]
    direct = gen.generate(convs, "direct", max_new_tokens=5, batch_size=2)
    codit = gen.generate(convs, "codit", max_new_tokens=5, batch_size=2)
    assert len(direct) == len(codit) == 3
    assert all(r.completion_tokens == 5 or r.finish_reason == "stop" for r in direct + codit)
    # order is the input order: answering one conversation alone gives the same text
    alone = gen.generate(convs[1:2], "codit", max_new_tokens=5)
    assert alone[0].text == codit[1].text
    assert [r.text for r in direct] != [r.text for r in codit]


def test_codit_mode_without_base_is_a_config_error(pair_dirs):
    gen = LocalGenerator(str(pair_dirs[0]), device="cpu")
    with pytest.raises(ConfigError, match="base"):
        gen.generate([[{"role": "user", "content": "hi"}]], "codit")
