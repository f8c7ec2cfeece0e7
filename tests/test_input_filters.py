"""Filters on the way in (first turn, turn count, length, language, dedup) and the exact key sets on disk."""

from __future__ import annotations

import pytest

from codit.errors import ConfigError
from codit.io.filters import PromptFilter, PromptFilters, normalize
from codit.io.keyset import KeyMap, KeySet, KeyUnion


def conv(*turns: str, system: str | None = None) -> list[dict[str, str]]:
    """user, assistant, user, ... turns (a conversation as the reader hands it over)."""
    out = [{"role": "system", "content": system}] if system else []
    for i, text in enumerate(turns):
        out.append({"role": "user" if i % 2 == 0 else "assistant", "content": text})
    return out


def test_first_turn_keeps_the_system_turn_and_the_first_user_turn():
    f = PromptFilter(PromptFilters(first_turn=True))
    got = f.keep(conv("first question", "an answer", "second question", system="be brief"))
    assert got == conv("first question", system="be brief")


def test_max_turns_counts_user_turns_before_the_cut():
    f = PromptFilter(PromptFilters(max_turns=1, first_turn=True))
    assert f.keep(conv("q1", "a1", "q2")) is None
    assert f.keep(conv("q1")) == conv("q1")
    assert f.dropped == {"max_turns": 1}


def test_length_bounds_are_on_user_characters_inclusive():
    f = PromptFilter(PromptFilters(min_chars=5, max_chars=10))
    assert f.keep(conv("abcd")) is None  # 4 < 5
    assert f.keep(conv("abcde")) is not None  # 5
    assert f.keep(conv("abcde", "a very long answer is not counted", "fghij")) is not None  # 10
    assert f.keep(conv("abcdefghijk")) is None  # 11 > 10
    assert f.dropped == {"min_chars": 1, "max_chars": 1}


def test_language_uses_the_ifeval_detector():
    f = PromptFilter(PromptFilters(language="en"))
    english = "Please write a short story about a dog who learns to swim in the sea."
    german = "Bitte schreibe eine kurze Geschichte über einen Hund, der im Meer schwimmen lernt."
    assert f.keep(conv(english)) is not None
    assert f.keep(conv(german)) is None
    assert f.dropped == {"language": 1}


def test_dedup_normalises_case_unicode_and_spaces():
    assert normalize(conv("Hello   World\n")) == normalize(conv("hello world"))
    assert normalize(conv("ﬁne")) == normalize(conv("fine"))  # NFKC folds the ligature
    f = PromptFilter(PromptFilters(dedup=True))
    kept = [
        f.keep(conv(t)) is not None
        for t in ("Hello World", "hello  world", "HELLO WORLD!", "hello world")
    ]
    assert kept == [True, False, True, False]
    assert f.dropped == {"dedup": 2}


def test_key_set_is_exact_and_counts_once():
    s = KeySet(["b", "a", "b"] + [f"k{i}" for i in range(3000)])  # past one insert batch
    assert len(s) == 3002
    assert s.add("c") and not s.add("a") and len(s) == 3003
    assert "a" in s and "c" in s and "k2999" in s and "k3000" not in s and None not in s
    assert list(s)[:3] == ["a", "b", "c"] and sum(1 for _ in s) == 3003  # pages of 1,024
    assert KeySet(["x", "y"]) == {"x", "y"} and KeySet(["x"]) | {"z"} == {"x", "z"}
    assert 3 in KeySet([1, 2, 3]) and "3" not in KeySet([1, 2, 3])  # keys keep their type


def test_key_set_iterates_while_keys_are_added():
    s = KeySet(str(i) for i in range(2500))
    seen = []
    for k in s:
        seen.append(k)
        if not k.startswith("~"):
            s.add("~" + k)  # sorts after every digit key: a later page yields it
    assert seen[:2500] == sorted(str(i) for i in range(2500)) and len(s) == 5000
    assert seen[2500:] == sorted("~" + str(i) for i in range(2500))


def test_key_union_is_a_live_view():
    a, b = KeySet(["1", "2"]), KeySet(["2", "3"])
    union = KeyUnion(a, b)
    assert "1" in union and "3" in union and "4" not in union
    assert sorted(union) == ["1", "2", "3"] and len(union) == 3
    b.add("4")
    assert "4" in union


def test_filter_flags_are_validated_together():
    with pytest.raises(ConfigError) as err:
        PromptFilters(max_turns=0, min_chars=9, max_chars=3, language="English")
    assert len(err.value.problems) == 3
    assert PromptFilters(first_turn=True, language="en").to_manifest() == {
        "first_turn": True,
        "language": "en",
    }
    assert not PromptFilters().active


def test_key_map_keeps_the_first_value():
    m = KeyMap()
    for i in range(7):
        assert m.put(f"id{i}", i + 1)
    assert not m.put("id2", 99)
    assert [m.get(f"id{i}") for i in range(7)] == [1, 2, 3, 4, 5, 6, 7]
    assert m.get("other") is None and len(m) == 7


def test_key_map_against_a_dict():
    import random

    rng = random.Random(0)
    m, ref = KeyMap(), {}
    for _ in range(3000):
        key = f"{rng.getrandbits(20):x}" if rng.random() < 0.7 or not ref else rng.choice(list(ref))
        value = rng.randrange(10**6)
        assert m.put(key, value) == (key not in ref)
        ref.setdefault(key, value)
    assert len(m) == len(ref)
    assert all(m.get(k) == v for k, v in ref.items())
    assert all(m.get(f"none{i}") is None for i in range(200))
