"""The toy world generator: deterministic for a seed, consistent, and honest about its data."""

from __future__ import annotations

import json

import pytest

from codit.evaluation.checks import CHECKS, follows, instruction_arguments
from codit.tiny.build import HELDOUT_PATH, BuildConfig
from codit.tiny.conversations import instruction_data, split_pairs
from codit.tiny.corpus import corpus
from codit.tiny.instructions import CONFLICTS, FAMILIES
from codit.tiny.tokenizer import CHAT_TEMPLATE, encode_conversation, train_tokenizer
from codit.tiny.world import make_world


@pytest.fixture(scope="module")
def data0():
    world = make_world(0)
    return world, corpus(world, 300, 0), *instruction_data(world, 400, 40, 0)


def test_same_seed_same_text(data0):
    world, docs, train, heldout = data0
    again = make_world(0)
    assert again == world
    assert corpus(again, 300, 0) == docs
    train2, heldout2 = instruction_data(again, 400, 40, 0)
    assert [e.messages() for e in train2] == [e.messages() for e in train]
    assert [e.ifeval() for e in heldout2] == [e.ifeval() for e in heldout]


def test_other_seed_other_text(data0):
    world, docs, train, heldout = data0
    other = make_world(1)
    assert other != world
    assert {c.name for c in other.creatures} != {c.name for c in world.creatures}
    assert corpus(other, 300, 1) != docs
    train1, _ = instruction_data(other, 400, 40, 1)
    assert [e.prompt for e in train1] != [e.prompt for e in train]


def test_world_is_consistent(data0):
    world = data0[0]
    names = [e.name for e in world.entities]
    assert len(names) == len(set(names))
    places = {p.name for p in world.places}
    assert all(c.home in places for c in world.creatures)
    assert all(t.place in places and world.creature(t.keeper) for t in world.things)
    assert all(p.neighbor in places and p.neighbor != p.name for p in world.places)


def test_corpus_has_no_chat(data0):
    docs = data0[1]
    assert all("<|" not in d for d in docs)
    assert any(line.isupper() for d in docs for line in d.splitlines())
    assert any("P.S." in d for d in docs) and any("\n* " in d for d in docs)


def test_every_training_answer_follows_its_instructions(data0):
    _, _, train, heldout = data0
    assert sum(bool(e.instruction_id_list) for e in train) > 0.7 * len(train)
    for example in train:
        for i, kwargs in zip(example.instruction_id_list, example.kwargs, strict=True):
            assert follows(i, example.response, kwargs, prompt=example.prompt), (i, example)
    for example in heldout:
        assert example.instruction_id_list  # every held-out prompt is scored
        for i, kwargs in zip(example.instruction_id_list, example.kwargs, strict=True):
            assert i in CHECKS
            instruction_arguments(i, kwargs, example.prompt)  # raises on a bad argument
            assert follows(i, example.response, kwargs, prompt=example.prompt)


def test_no_conflicting_instructions_are_drawn(data0):
    _, _, train, heldout = data0
    assert set(FAMILIES) <= set(CHECKS)
    for example in train + heldout:
        ids = example.instruction_id_list
        assert len(set(ids)) == len(ids)
        assert not any(frozenset((a, b)) in CONFLICTS for a in ids for b in ids if a != b)


def test_heldout_questions_are_never_trained_on(data0):
    world, _, train, heldout = data0
    train_pairs, heldout_pairs = split_pairs(world, 0)
    assert heldout_pairs and not {(e.name, k) for e, k in train_pairs} & {
        (e.name, k) for e, k in heldout_pairs
    }
    assert not {e.prompt for e in train} & {e.prompt for e in heldout}


def test_shipped_heldout_file_is_what_the_generator_makes():
    defaults = BuildConfig()
    _, heldout = instruction_data(
        make_world(defaults.seed), defaults.conversations, defaults.heldout, defaults.seed
    )
    shipped = [json.loads(line) for line in HELDOUT_PATH.read_text().splitlines()]
    assert shipped == [e.ifeval() for e in heldout]


def test_chat_template_and_answer_only_labels(data0):
    train = data0[2]
    tokenizer = train_tokenizer((e.prompt + "\n" + e.response for e in train), vocab_size=400)
    assert tokenizer.chat_template == CHAT_TEMPLATE
    example = next(e for e in train if e.system)
    text = tokenizer.apply_chat_template(
        example.messages()[:-1], tokenize=False, add_generation_prompt=True
    )
    assert (
        text
        == f"<|system|>\n{example.system}<|end|>\n<|user|>\n{example.prompt}<|end|>\n<|assistant|>\n"
    )
    ids, labels = encode_conversation(tokenizer, example.messages())
    answer = [t for t in labels if t != -100]
    assert labels[: len(ids) - len(answer)] == [-100] * (len(ids) - len(answer))
    assert tokenizer.decode(answer) == example.response + "<|end|>"
    full = tokenizer.apply_chat_template(example.messages(), tokenize=False)
    assert full == text + example.response + "<|end|>\n"
