"""codit compare on two small hand-made files: every number below is computed by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codit.cli.main import main
from codit.compare import metrics as m
from codit.compare.run import CompareConfig, compare
from codit.io.manifest import write_manifest

PROMPTS = {
    "p1": "Greet a friend.",
    "p2": "Tell me about a cat.",
    "p3": "Say it.",
    "a-only": "x",
    "b1": "y",
    "b2": "z",
}
A = [  # id, response, completion tokens, finish reason
    ("p1", "hello there friend", 3, "stop"),
    ("p2", "The cat sat. The cat ran.", 7, "length"),
    ("p3", "same answer", 2, "stop"),
    ("a-only", "only in a", 3, "stop"),
]
B = [
    ("p1", "HELLO THERE", 2, "stop"),
    ("p2", "A dog barked", 3, "stop"),
    ("p3", "same answer", 2, "stop"),
    ("b1", "only in b", 3, "stop"),
    ("b2", "also only in b", 4, "stop"),
]
INSTRUCTIONS = [
    {
        "id": "p1",
        "prompt": PROMPTS["p1"],
        "instruction_id_list": ["keywords:existence", "punctuation:no_comma"],
        "kwargs": [{"keywords": ["friend"]}, {}],
    },
    {
        "id": "p2",
        "prompt": PROMPTS["p2"],
        "instruction_id_list": ["startend:end_checker"],
        "kwargs": [{"end_phrase": "ran."}],
    },
    {"id": "p3", "prompt": PROMPTS["p3"]},
]


def _write(path: Path, rows, tokens: bool = True) -> Path:
    lines = []
    for key, text, n, reason in rows:
        meta = {"finish_reason": reason, **({"completion_tokens": n} if tokens else {})}
        messages = [
            {"role": "user", "content": PROMPTS[key]},
            {"role": "assistant", "content": text},
        ]
        lines.append(json.dumps({"id": key, "messages": messages, "meta": meta}) + "\n")
    path.write_text("".join(lines))
    return path


@pytest.fixture
def files(tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps(r) + "\n" for r in INSTRUCTIONS))
    return _write(tmp_path / "a.jsonl", A), _write(tmp_path / "b.jsonl", B), prompts


def test_hand_computed_metrics(files, tmp_path):
    a, b, prompts = files
    out = tmp_path / "cmp"
    r = compare(
        a,
        b,
        CompareConfig(output=str(out), labels="direct,codit", prompts=str(prompts), examples=2),
    )
    assert r["shared"] == 3 and r["only"] == {"direct": 1, "codit": 2}
    assert r["length_unit"] == "tokens"
    d, c = r["sides"]["direct"], r["sides"]["codit"]
    # direct lengths [3, 7, 2]: sorted [2, 3, 7]; p10 at 0.2 between 2 and 3, p90 at 1.8 between 3 and 7
    assert d["length"] == pytest.approx(
        {"n": 3, "mean": 4.0, "median": 3.0, "p10": 2.2, "p90": 6.2, "min": 2, "max": 7}
    )
    # codit lengths [2, 3, 2]: sorted [2, 2, 3]
    assert c["length"] == pytest.approx(
        {"n": 3, "mean": 7 / 3, "median": 2.0, "p10": 2.0, "p90": 2.8, "min": 2, "max": 3}
    )
    assert d["finish_reasons"] == {"stop": 2, "length": 1}
    assert d["finish_reason_shares"] == pytest.approx({"stop": 2 / 3, "length": 1 / 3})
    assert c["finish_reasons"] == {"stop": 3}
    # direct words: hello there friend | the cat sat the cat ran | same answer -> 11 words, 9 distinct;
    # bigrams 2 + 5 + 1 = 8, "the cat" twice -> 7 distinct
    assert d["distinct_1"] == pytest.approx(9 / 11) and d["distinct_2"] == pytest.approx(7 / 8)
    assert c["distinct_1"] == 1.0 and c["distinct_2"] == 1.0
    assert r["identical"] == pytest.approx(1 / 3)
    # differences: p1 1 - 2/3, p2 1 (no shared word), p3 0
    assert r["mean_difference"] == pytest.approx((1 / 3 + 1 + 0) / 3)
    assert [(e["id"], e["difference"]) for e in r["examples"]] == [("p2", 1.0), ("p1", 0.3333)]
    assert (
        r["examples"][0]["direct"] == "The cat sat. The cat ran."
        and r["examples"][0]["codit"] == "A dog barked"
    )
    # checks on p1 and p2 (p3 carries none): direct follows all three; codit only no_comma
    cd, cc = r["checks"]["direct"], r["checks"]["codit"]
    assert (cd["prompts"], cd["prompt_level"], cd["instruction_level"]) == (2, 1.0, 1.0)
    assert (cc["prompts"], cc["prompt_level"], cc["instruction_level"]) == (
        2,
        0.0,
        pytest.approx(1 / 3),
    )
    assert cc["per_instruction"] == {
        "keywords:existence": 0.0,
        "punctuation:no_comma": 1.0,
        "startend:end_checker": 0.0,
    }

    assert sorted(p.name for p in out.iterdir()) == [
        "checks.png",
        "lengths.png",
        "metrics.json",
        "report.md",
    ]
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["sides"]["direct"]["distinct_2"] == pytest.approx(7 / 8)
    report = (out / "report.md").read_text()
    assert "| length mean (tokens) | 4.0 | 2.3 |" in report
    assert "| stop | 2 (66.7%) | 3 (100.0%) |" in report
    assert "| `startend:end_checker` | 1 | 1.00 | 0.00 |" in report
    assert "### `p2` (difference 1.00)" in report
    assert (out / "lengths.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_words_when_a_record_lacks_tokens_and_instructions_from_the_manifest(files, tmp_path):
    """One side without completion_tokens -> both in words; instructions found via A's manifest."""
    a, _, prompts = files
    b = _write(tmp_path / "b_words.jsonl", B, tokens=False)
    write_manifest(a, {"config": {"input": str(prompts), "id_field": None}})
    r = compare(a, b, CompareConfig(output=str(tmp_path / "o")))
    assert r["labels"] == ["a", "b_words"]
    assert r["length_unit"] == "words"
    assert r["sides"]["a"]["length"]["mean"] == pytest.approx((3 + 6 + 2) / 3)
    assert r["sides"]["b_words"]["length"]["mean"] == pytest.approx((2 + 3 + 2) / 3)
    assert r["checks"]["a"]["prompt_level"] == 1.0


def test_instructions_matched_by_prompt_text_and_no_checks_without_them(files, tmp_path):
    a, b, _ = files
    by_text = tmp_path / "no_ids.jsonl"
    by_text.write_text(
        "".join(json.dumps({k: v for k, v in r.items() if k != "id"}) + "\n" for r in INSTRUCTIONS)
    )
    r = compare(a, b, CompareConfig(output=str(tmp_path / "t"), prompts=str(by_text)))
    assert r["checks"]["b"]["instruction_level"] == pytest.approx(1 / 3)
    plain = compare(a, b, CompareConfig(output=str(tmp_path / "n")))
    assert "checks" not in plain and not (tmp_path / "n" / "checks.png").exists()


def test_pure_metrics_edges():
    assert m.distinct_n([], 2) == 0.0 and m.distinct_n(["one"], 2) == 0.0
    assert m.difference("", "") == 0.0 and m.difference("A b", "b a") == 0.0
    assert m.quantile([5], 0.9) == 5 and m.quantile([1, 2, 3, 4], 0.5) == 2.5
    assert m.identical_share([(" x ", "x"), ("x", "y")]) == 0.5
    # ties in difference go to the larger length gap, then to the id
    pairs = {"b": ("x", "y"), "a": ("x", "y"), "c": ("x", "y y y")}
    assert [k for k, _ in m.most_different(pairs, 3)] == ["c", "a", "b"]


def test_cli_compare(files, tmp_path, capsys):
    a, b, _ = files
    assert (
        main(
            ["compare", str(a), str(b), "--labels", "direct,codit", "--output", str(tmp_path / "c")]
        )
        == 0
    )
    err = capsys.readouterr().err
    assert "3 shared ids" in err and f"report -> {tmp_path / 'c' / 'report.md'}" in err
    assert (
        main(["compare", str(a), str(b), "--labels", "just-one", "--output", str(tmp_path / "c")])
        == 2
    )
    disjoint = _write(tmp_path / "d.jsonl", [("b1", "t", 1, "stop")])
    assert main(["compare", str(a), str(disjoint), "--output", str(tmp_path / "c")]) == 3
    assert "share no record id" in capsys.readouterr().err


def test_prompt_completion_records_and_identical_files(tmp_path):
    rows = [
        {"id": "x", "prompt": "q", "completion": "one two two"},
        {"id": "y", "prompt": "r", "completion": [{"role": "assistant", "content": "three"}]},
    ]
    path = tmp_path / "pc.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    r = compare(path, path, CompareConfig(output=str(tmp_path / "same")))
    assert r["labels"] == ["pc (A)", "pc (B)"]
    assert r["identical"] == 1.0 and r["mean_difference"] == 0.0
    assert r["length_unit"] == "words" and r["sides"]["pc (A)"]["length"]["mean"] == 2.0
    assert r["sides"]["pc (A)"]["distinct_1"] == pytest.approx(3 / 4)  # one two two three
    assert r["sides"]["pc (B)"]["finish_reasons"] == {"unknown": 2}
