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
    # the same greedy tokens as HF generate (direct) and the no-cache reference rule (codit)
    import torch

    from codit.decoding.contrastive import codit_scores
    from codit.models.chat import prompt_ids

    pair = gen.pair
    for conv, d, c in zip(convs, direct, codit, strict=True):
        ids = prompt_ids(pair.tokenizer, conv, None)
        for result, base in ((d, None), (c, pair.base.model)):
            context = list(ids)
            expected: list[int] = []
            reason = "length"
            with torch.no_grad():
                for _ in range(5):
                    x = torch.tensor([context])
                    post = pair.instruct.model(x).logits[0, -1, : pair.vocab_size]
                    if base is None:
                        token = int(post.argmax())
                    else:
                        b = base(x).logits[0, -1, : pair.vocab_size]
                        token = int(codit_scores(post[None], b[None], 0.01, 1.0)[0].argmax())
                    if token in pair.stop_ids:
                        reason = "stop"
                        break
                    expected.append(token)
                    context.append(token)
            assert result.finish_reason == reason
            assert result.completion_tokens == len(expected) + (reason == "stop")
            assert result.text == pair.tokenizer.decode(expected, skip_special_tokens=True)
    # order is the input order: answering one conversation alone gives the same text
    alone = gen.generate(convs[1:2], "codit", max_new_tokens=5)
    assert alone[0].text == codit[1].text
    assert [r.text for r in direct] != [r.text for r in codit]


def test_codit_mode_without_base_is_a_config_error(pair_dirs):
    gen = LocalGenerator(str(pair_dirs[0]), device="cpu")
    with pytest.raises(ConfigError, match="base"):
        gen.generate([[{"role": "user", "content": "hi"}]], "codit")
