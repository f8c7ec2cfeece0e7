"""``codit filter`` and ``codit select --best`` on hand-made files, counts worked out by hand."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from codit.annotation.measures import measures
from codit.cli.main import main

LOOP = "ha" * 60  # 120 characters: every rule fires


def rec(
    rid: str, text: str = "a plain answer", finish: str = "stop", **meta: Any
) -> dict[str, Any]:
    return {
        "id": rid,
        "messages": [
            {"role": "user", "content": f"q {rid}"},
            {"role": "assistant", "content": text},
        ],
        "meta": {"finish_reason": finish, "completion_tokens": 4, **meta},
    }


def annotated(
    rid: str, score: int | None, repetitive: bool = False, capped: bool = False, **meta: Any
) -> dict[str, Any]:
    r = rec(rid, LOOP if repetitive else "a plain answer", "length" if capped else "stop", **meta)
    r["annotation"] = {"score": score, **measures(r, r["messages"][-1]["content"])}
    return r


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def ann(tmp_path: Path) -> Path:
    return write_jsonl(
        tmp_path / "ann.jsonl",
        [
            annotated("good", 9),
            annotated("low", 5),
            annotated("unscored", None),
            annotated("loop", 8, repetitive=True),
            annotated("cut", 8, capped=True),
            annotated("all-bad", 3, repetitive=True, capped=True),
            annotated("ok", 7),
        ],
    )


def test_filter_counts_every_rule(
    ann: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sft.jsonl"
    args = ["filter", "--input", str(ann), "--output", str(out)]
    assert main([*args, "--min-score", "7", "--drop-repetitive", "--drop-length-capped"]) == 0
    assert [r["id"] for r in read(out)] == ["good", "ok"]
    assert read(out)[0] == read(ann)[0]  # records are written unchanged
    report = json.loads((tmp_path / "sft.report.json").read_text())
    assert (report["records"], report["kept"], report["removed"]) == (7, 2, 5)
    # min score: low, unscored, all-bad; repetitive: loop, all-bad; capped: cut, all-bad
    assert report["min_score"] == {"threshold": 7.0, "removed": 3, "of_which_unscored": 1}
    every = {"char2": 2, "char3": 2, "char4": 2, "substring": 2}
    assert report["repetitive"] == {"removed": 2, "by_rule": every}
    assert report["length_capped"] == {"removed": 2, "finish_reason_unknown": 0}
    assert report["removed_by"] == {
        "length_capped": 1,
        "min_score": 2,
        "min_score+repetitive+length_capped": 1,
        "repetitive": 1,
    }
    assert json.loads(capsys.readouterr().out)["kept"] == 2
    assert report["before"]["records"] == 7 and report["before"]["scored"] == 6
    assert report["before"]["mean_score"] == round((9 + 5 + 8 + 8 + 3 + 7) / 6, 2)
    assert (report["before"]["repetitive"], report["before"]["length_capped"]) == (2, 2)
    assert report["after"]["mean_score"] == 8.0 and report["after"]["repetitive"] == 0

    # One rule at a time; a rerun replaces the output.
    assert main([*args, "--drop-repetitive"]) == 0
    assert [r["id"] for r in read(out)] == ["good", "low", "unscored", "cut", "ok"]
    assert main([*args, "--min-score", "8"]) == 0
    assert [r["id"] for r in read(out)] == ["good", "loop", "cut"]


def test_filter_without_annotations_computes_repetition_and_length(tmp_path: Path, capsys) -> None:
    plain = write_jsonl(
        tmp_path / "gen.jsonl",
        [
            rec("a"),
            rec("b", LOOP),
            rec("c", finish="length"),
            {"prompt": "q", "completion": "no meta, no id"},
            {"prompt": "q", "completion": "x" * 100},
        ],
    )
    out = tmp_path / "sft.jsonl"
    args = [
        "filter",
        "--input",
        str(plain),
        "--output",
        str(out),
        "--drop-repetitive",
        "--drop-length-capped",
    ]
    assert main(args) == 0
    assert [r.get("id") for r in read(out)] == ["a", None]
    report = json.loads((tmp_path / "sft.report.json").read_text())
    assert report["repetitive"]["removed"] == 2 and report["length_capped"]["removed"] == 1
    assert report["length_capped"]["finish_reason_unknown"] == 2
    assert report["computed_without_annotation"] == 5
    before = report["before"]
    assert before["mean_chars"] == round((14 + 120 + 14 + 14 + 100) / 5, 2)
    assert before["mean_tokens"] == 4.0  # the three records with meta.completion_tokens
    assert (before["repetition_checked"], before["repetitive"]) == (2, 2)
    # "x" * 100 has one 100-character window: the substring rule needs 10
    assert before["repetitive_by_rule"] == {"char2": 2, "char3": 2, "char4": 2, "substring": 1}
    capsys.readouterr()
    assert main(["filter", "--input", str(plain), "--output", str(out), "--min-score", "7"]) == 3
    err = capsys.readouterr().err
    assert "--min-score needs judge scores" in err and "codit annotate" in err


def test_filter_flags_are_checked(ann: Path, tmp_path: Path, capsys) -> None:
    assert main(["filter", "--input", str(ann), "--output", str(ann), "--min-score", "11"]) == 2
    err = capsys.readouterr().err
    assert "--min-score must be in [1, 10]" in err and "--output must differ" in err


def test_select_best_picks_by_score_then_lowest_sample(tmp_path: Path) -> None:
    def sample(pid: str, k: int, score: int | None) -> dict[str, Any]:
        return annotated(f"{pid}#s{k}", score, prompt_id=pid, sample=k, num_samples=3)

    inp = write_jsonl(
        tmp_path / "ann.jsonl",
        [
            sample("p1", 0, 6),
            sample(
                "p1", 2, 8
            ),  # ties with s1, which comes later in the file but has the lower index
            sample("p1", 1, 8),
            sample("p2", 0, None),  # unscored never wins over a scored candidate
            sample("p2", 1, 2),
            sample("p3", 0, None),  # no scored candidate: left out
            sample("p3", 1, None),
            annotated("plain", 5),  # not a sample: its own only candidate
        ],
    )
    out = tmp_path / "bon.jsonl"
    assert main(["select", "--best", "--input", str(inp), "--output", str(out)]) == 0
    rows = read(out)
    assert [(r["id"], r["meta"]["sample_id"], r["meta"]["best_of"]) for r in rows] == [
        ("p1", "p1#s1", 3),
        ("p2", "p2#s1", 2),
        ("plain", "plain", 1),
    ]
    assert rows[0]["messages"] == read(inp)[2]["messages"]
    report = json.loads((tmp_path / "bon.report.json").read_text())
    assert report["prompts"] == 4 and report["chosen"] == 3 and report["ties_broken"] == 1
    assert report["no_scored_candidate"] == ["p3"] and report["unscored_candidates"] == 3
    assert report["mean_score_chosen"] == round((8 + 2 + 5) / 3, 4)
    assert report["mean_score_all_candidates"] == round((6 + 8 + 8 + 2 + 5) / 5, 4)


def test_select_needs_annotations_and_the_best_flag(tmp_path: Path, capsys) -> None:
    plain = write_jsonl(tmp_path / "gen.jsonl", [rec("a")])
    assert (
        main(["select", "--best", "--input", str(plain), "--output", str(tmp_path / "o.jsonl")])
        == 3
    )
    assert "run codit annotate first" in capsys.readouterr().err
    assert main(["select", "--input", str(plain), "--output", str(tmp_path / "o.jsonl")]) == 2
    assert "--best" in capsys.readouterr().err


def test_best_of_n_in_three_commands(pair_dirs: tuple[Path, Path], tmp_path: Path) -> None:
    """generate --num-samples, annotate against a scripted judge, select --best: one record per
    prompt, the best-graded sample, with the prompt's id."""
    from fakeserver import FakeServer, Reply, last_user

    def judge(body: dict[str, Any], n: int) -> Reply:
        answer = last_user(body).split("[Answer]\n", 1)[1].split("\n[End of answer]", 1)[0]
        return Reply(text=f"Fine.\nScore: [[{1 + len(answer) % 10}]]")  # a grade we can recompute

    prompts = write_jsonl(
        tmp_path / "p.jsonl", [{"id": f"q{i}", "prompt": f"tell me {i}"} for i in range(3)]
    )
    samples, ann, bon = tmp_path / "d3.jsonl", tmp_path / "d3.ann.jsonl", tmp_path / "bon.jsonl"
    generate = [
        "generate",
        "--instruct",
        str(pair_dirs[0]),
        "--mode",
        "direct",
        "--input",
        str(prompts),
    ]
    assert (
        main(
            [
                *generate,
                "--output",
                str(samples),
                "--num-samples",
                "3",
                "--max-new-tokens",
                "12",
                "--no-progress",
            ]
        )
        == 0
    )
    with FakeServer(judge) as server:
        annotate = [
            "annotate",
            "--input",
            str(samples),
            "--judge",
            f"openai:j@{server.url}",
            "--output",
            str(ann),
        ]
        assert main([*annotate, "--no-progress"]) == 0
        assert len(server.requests) == 9
    assert main(["select", "--best", "--input", str(ann), "--output", str(bon)]) == 0
    candidates = read(ann)
    chosen = read(bon)
    assert sorted(r["id"] for r in chosen) == ["q0", "q1", "q2"]
    for record in chosen:
        mine = [c for c in candidates if c["meta"]["prompt_id"] == record["id"]]
        grade = {c["id"]: 1 + len(c["messages"][-1]["content"]) % 10 for c in mine}
        assert {c["id"]: c["annotation"]["score"] for c in mine} == grade
        top = max(grade.values())
        expected = min(
            (c for c in mine if grade[c["id"]] == top), key=lambda c: c["meta"]["sample"]
        )
        assert record["meta"]["sample_id"] == expected["id"] and record["meta"]["best_of"] == 3
        assert record["messages"] == expected["messages"]
