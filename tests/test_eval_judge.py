"""Pairwise judging: CodecLM's two-order rule, verdict parsing, bootstrap intervals, and the
``codit eval judge`` command against a scripted OpenAI-compatible judge."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from codit.cli.main import main
from codit.evaluation.judge import (
    Judgment,
    bootstrap_interval,
    capacity_recovery,
    load_template,
    pair_outcome,
    pair_responses,
    parse_verdict,
    render,
    win_rate,
)
from codit.evaluation.responses import Response
from fakeserver import FakeServer, Reply

SECTION = re.compile(r"\[Response (A|B)\]\n(.*?)\n\[End of Response \1\]", re.S)


def judge_script(body: dict, n: int) -> Reply:
    """A judge that prefers the response containing "strong", always picks the first response
    for "biased" pairs, calls "even" pairs a tie, rambles without a verdict on "garbled" ones,
    and is rate limited on its very first request."""
    if n == 0:
        return Reply(status=429, headers={"Retry-After": "0"})
    shown = dict(SECTION.findall(body["messages"][-1]["content"]))
    first, second = shown["A"], shown["B"]
    if "garbled" in first + second:
        return Reply(text="Both have merits and I cannot choose.")
    if "biased" in first:
        return Reply(text="The first one reads better.\n[[A]]")
    if "even" in first:
        return Reply(text="They are equally good.\n[[C]]")
    return Reply(text="Verdict:\n[[A]]" if "strong" in first else "Verdict:\n[[B]]")


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def answer_files(tmp_path: Path) -> tuple[Path, Path]:
    a = write_jsonl(
        tmp_path / "a.jsonl",
        [
            {"id": "p1", "prompt": "Q1", "response": "a strong answer"},
            {
                "id": "p2",
                "messages": [
                    {"role": "user", "content": "Q2"},
                    {"role": "assistant", "content": "a weak answer"},
                ],
            },
            {"id": "p3", "prompt": "Q3", "response": "a biased answer"},
            {"id": "p4", "prompt": "Q4", "response": "an even answer"},
            {"id": "p5", "prompt": "Q5", "response": "a garbled answer"},
            {"id": "only-a", "prompt": "Q6", "response": "alone"},
        ],
    )
    b = write_jsonl(
        tmp_path / "b.jsonl",
        [
            {"id": "p2", "prompt": "Q2", "response": "b strong answer"},
            {"id": "p1", "prompt": "Q1", "response": "b weak answer"},
            {"id": "p3", "prompt": "Q3", "response": "b biased answer"},
            {"id": "p4", "prompt": "Q4", "response": "b even answer"},
            {"id": "p5", "prompt": "Q5", "response": "b answer"},
            {"id": "only-b", "prompt": "Q7", "response": "alone"},
        ],
    )
    return a, b


def test_judge_command_counts(
    answer_files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = answer_files
    out = tmp_path / "judge"
    with FakeServer(judge_script) as server:
        args = [
            "eval",
            "judge",
            "--a",
            str(a),
            "--b",
            str(b),
            "--judge",
            f"openai:judge@{server.url}",
            "--output",
            str(out),
            "--retry-delay",
            "0.01",
            "--bootstrap",
            "200",
        ]
        assert main(args) == 0
        assert len(server.requests) == 1 + 2 * 5  # one 429, then every pair in both orders
        metrics = json.loads((out / "metrics.json").read_text())
        # p1 win (both orders), p2 loss, p3 tie (position bias), p4 tie, p5 unparsable.
        assert (metrics["wins"], metrics["ties"], metrics["losses"]) == (1, 2, 1)
        assert metrics["unparsable"] == 1 and metrics["failed"] == 0
        assert metrics["total"] == 4 and metrics["pairs"] == 5
        assert metrics["unpaired_a"] == 1 and metrics["unpaired_b"] == 1
        assert metrics["win_rate"] == pytest.approx(0.25)
        assert metrics["crr"] == pytest.approx(0.75)
        lo, hi = metrics["crr_ci"]
        assert 0 <= lo <= 0.75 <= hi <= 1
        assert metrics["run"]["judge"] == f"openai:judge@{server.url}"
        judgments = [
            json.loads(line) for line in (out / "judgments.jsonl").read_text().splitlines()
        ]
        assert len(judgments) == 10
        assert [j["order"] for j in judgments[:2]] == ["ab", "ba"]
        garbled = [j for j in judgments if j["pair"] == "p5"]
        assert all(j["verdict"] is None and j["outcome_for_a"] == "unparsable" for j in garbled)
        assert garbled[0]["judgment"] == "Both have merits and I cannot choose."
        assert "CRR" in capsys.readouterr().out

        # A rerun takes every judgment from the cache and gives the same report.
        assert main(args) == 0
        assert len(server.requests) == 11
        again = json.loads((out / "metrics.json").read_text())
        assert (again["wins"], again["ties"], again["losses"]) == (1, 2, 1)


def test_judge_rejects_a_bad_spec(
    answer_files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = answer_files
    code = main(
        [
            "eval",
            "judge",
            "--a",
            str(a),
            "--b",
            str(b),
            "--judge",
            "gpt-4o",
            "--output",
            str(tmp_path),
        ]
    )
    assert code == 2
    assert "openai:MODEL@BASE_URL" in capsys.readouterr().err


def j(order: str, verdict: str | None, error: str | None = None) -> Judgment:
    return Judgment("x", order, "", verdict, error)


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        (j("ab", "A"), j("ba", "B"), "win"),
        (j("ab", "B"), j("ba", "A"), "loss"),
        (j("ab", "A"), j("ba", "A"), "tie"),  # the judge always picked the first position
        (j("ab", "A"), j("ba", "C"), "tie"),  # a win in one order only is a tie
        (j("ab", "C"), j("ba", "C"), "tie"),
        (j("ab", "A"), j("ba", None), "unparsable"),
        (j("ab", None, error="HTTP 400"), j("ba", "B"), "failed"),
    ],
)
def test_codeclm_rule(first: Judgment, second: Judgment, expected: str) -> None:
    assert pair_outcome(first, second) == expected


@pytest.mark.parametrize(
    ("text", "verdict"),
    [
        ("Response A is clearer.\n[[A]]", "A"),
        ("[[B]]", "B"),
        ("It is a tie: [[ C ]]", "C"),
        ("Options are [[A]], [[B]] or [[C]].\nMy verdict: [[B]]", "B"),
        ("My verdict: [[A]] or maybe [[B]]", None),
        ("Response A is better.", None),
        ("", None),
    ],
)
def test_parse_verdict(text: str, verdict: str | None) -> None:
    assert parse_verdict(text) == verdict


def test_bootstrap_interval_is_seeded_and_brackets_the_estimate() -> None:
    outcomes = ["win"] * 30 + ["tie"] * 50 + ["loss"] * 20
    ci = bootstrap_interval(outcomes, capacity_recovery, 500, seed=7)
    assert ci == bootstrap_interval(outcomes, capacity_recovery, 500, seed=7)
    assert ci[0] < capacity_recovery(outcomes) == 0.8 < ci[1]
    assert bootstrap_interval(["win"] * 5, win_rate, 100, seed=0) == [1.0, 1.0]
    assert bootstrap_interval([], win_rate, 100, seed=0) is None


def test_pairing_by_prompt_when_ids_are_missing() -> None:
    a = [Response(None, "Q1", "a1"), Response(None, "Q2", "a2")]
    b = [Response("b-2", "Q2", "b2"), Response("b-9", "Q9", "b9")]
    pairs, unpaired_a, unpaired_b = pair_responses(a, b)
    assert [(p.id, p.a, p.b) for p in pairs] == [("Q2", "a2", "b2")]
    assert (unpaired_a, unpaired_b) == (1, 1)


def test_template_is_filled_in_one_pass() -> None:
    template = load_template()
    prompt = render(template, "Say {response_b}", "uses {braces}", "plain")
    assert "Say {response_b}" in prompt and "uses {braces}" in prompt
    assert "[[A]]" in template and "[[C]]" in template
