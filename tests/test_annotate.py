"""``codit annotate`` against a scripted OpenAI-compatible judge: grades, re-asks, unscored
records, the cache, resuming after SIGKILL, and token counts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from codit.cli.main import main
from fakeserver import FakeServer, Reply, last_user
from scripted_llm import between


def answer_of(body: dict[str, Any]) -> str:
    return between(last_user(body), "[Answer]\n", "\n[End of answer]")


def grader(body: dict[str, Any], n: int) -> Reply:
    """A judge whose grade depends on a marker word in the answer:

    great -> 9; fine -> 6; noscore -> never a score; twonum -> always two scores on its line;
    late -> no score on the first ask (seed 0), 4 on re-asks; toolong -> HTTP 400, context length.
    """
    answer = answer_of(body)
    if "toolong" in answer:
        return Reply(status=400, error="This model's maximum context length is 8 tokens")
    if "noscore" in answer:
        return Reply(text="The answer is hard to judge. I would rather not score it.")
    if "twonum" in answer:
        return Reply(text="Mixed.\nScore: [[7]] or [[8]]")
    if "late" in answer and body["seed"] == 0:
        return Reply(text="Strengths: short.\nWeaknesses: vague.")
    score = 9 if "great" in answer else 6 if "fine" in answer else 4
    return Reply(text=f"Analysis of the answer.\nStrengths: -\nWeaknesses: -\nScore: [[{score}]]")


def record(rid: str, answer: str, tokens: int = 5, finish: str = "stop") -> dict[str, Any]:
    return {
        "id": rid,
        "messages": [
            {"role": "user", "content": f"question {rid}"},
            {"role": "assistant", "content": answer},
        ],
        "meta": {"mode": "direct", "finish_reason": finish, "completion_tokens": tokens},
    }


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def records_file(tmp_path: Path) -> Path:
    return write_jsonl(
        tmp_path / "out.jsonl",
        [
            record("a", "a great answer", tokens=3),
            record("b", "a fine answer", tokens=3, finish="length"),
            record("c", "noscore here"),
            record("d", "twonum here"),
            record("e", "late " + "ha" * 60),  # 125 characters of a loop
            record("f", "toolong"),
        ],
    )


def annotate_args(inp: Path, out: Path, url: str, *extra: str) -> list[str]:
    return [
        "annotate",
        "--input",
        str(inp),
        "--judge",
        f"openai:judge@{url}",
        "--output",
        str(out),
        "--retry-delay",
        "0.01",
        "--no-progress",
        *extra,
    ]


def test_annotate_grades_reasks_and_never_guesses(records_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "ann.jsonl"
    with FakeServer(grader) as server:
        assert main(annotate_args(records_file, out, server.url)) == 0
        # a, b, f once; c and d three times (two re-asks); e twice (read on the first re-ask)
        assert len(server.requests) == 1 + 1 + 3 + 3 + 2 + 1
        first = [r for r in server.requests if "noscore" in answer_of(r)]
        assert [(r["seed"], r["temperature"]) for r in first] == [(0, 0.0), (1, 0.7), (2, 0.7)]
        rows = {r["id"]: r for r in read(out)}
        assert list(rows) == ["a", "b", "c", "d", "e", "f"]
        ann = {k: r["annotation"] for k, r in rows.items()}
        assert {k: a["score"] for k, a in ann.items()} == {
            "a": 9,
            "b": 6,
            "c": None,
            "d": None,
            "e": 4,
            "f": None,
        }
        assert ann["a"]["judgments"] == [
            "Analysis of the answer.\nStrengths: -\nWeaknesses: -\nScore: [[9]]"
        ]
        assert ann["a"]["judge"] == "openai:judge" and ann["a"]["error"] is None
        assert len(ann["c"]["judgments"]) == 3 and "no 'Score: [[N]]' line" in ann["c"]["error"]
        assert "more than one score" in ann["d"]["error"]
        assert len(ann["e"]["judgments"]) == 2 and ann["e"]["error"] is None
        assert ann["f"]["judgments"] == [] and "context" in ann["f"]["error"]
        # the judge-free facts
        assert (ann["a"]["tokens"], ann["a"]["tokens_from"]) == (3, "meta.completion_tokens")
        assert ann["b"]["length_capped"] is True and ann["a"]["length_capped"] is False
        assert ann["e"]["repetition"]["repetitive"] and ann["e"]["repetition"]["fired"] == [
            "char2",
            "char3",
            "char4",
            "substring",  # 26 windows of 100 characters, every other one the same: 13 times
        ]
        assert not ann["a"]["repetition"]["checked"]
        # the input record is kept as it was
        assert {k: v for k, v in rows["b"].items() if k != "annotation"} == read(records_file)[1]
        report = json.loads((tmp_path / "ann.report.json").read_text())
        assert report["records"]["scored"] == 3 and report["records"]["unscored"] == 3
        assert report["records"]["unscored_failed_requests"] == 1
        assert report["score"]["mean"] == round((9 + 6 + 4) / 3, 4)
        assert report["repetition"] == {
            "checked": 1,
            "repetitive": 1,
            "by_rule": {"char2": 1, "char3": 1, "char4": 1, "substring": 1},
        }
        assert report["length_capped"] == 1
        assert report["cost"]["judge"]["calls"] == 11

        # A rerun finds every id written and asks nothing.
        assert main(annotate_args(records_file, out, server.url)) == 0
        assert len(server.requests) == 11
        assert [r["id"] for r in read(out)] == ["a", "b", "c", "d", "e", "f"]

        # A fresh output with the same cache repeats no finished call (only the failed request).
        out2 = tmp_path / "ann2.jsonl"
        cache = str(tmp_path / "ann.cache.sqlite")
        assert main(annotate_args(records_file, out2, server.url, "--cache", cache)) == 0
        assert len(server.requests) == 12
        assert [r["annotation"]["score"] for r in read(out2)] == [9, 6, None, None, 4, None]


def test_a_rerun_with_another_judge_is_refused(records_file: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "ann.jsonl"
    with FakeServer(grader) as server:
        assert main(annotate_args(records_file, out, server.url, "--limit", "1")) == 0
        args = annotate_args(records_file, out, server.url)
        args[args.index("--judge") + 1] = f"openai:other@{server.url}"
        assert main(args) == 2
    assert "judge" in capsys.readouterr().err


def test_token_lengths_with_a_tokenizer(records_file: Path, tmp_path: Path) -> None:
    from codit.models.loading import load_tokenizer

    tokenizer = load_tokenizer("tiny-instruct")
    out = tmp_path / "ann.jsonl"
    with FakeServer(grader) as server:
        args = annotate_args(
            records_file, out, server.url, "--tokenizer", "tiny-instruct", "--limit", "2"
        )
        assert main(args) == 0
    ann = read(out)[0]["annotation"]
    assert ann["tokens"] == len(tokenizer.encode("a great answer", add_special_tokens=False))
    assert ann["tokens_from"] == "tokenizer:tiny-instruct"


def test_bad_inputs_fail_before_any_call(tmp_path: Path, capsys) -> None:
    no_ids = write_jsonl(tmp_path / "x.jsonl", [{"prompt": "q", "response": "r"}])
    with FakeServer(grader) as server:
        assert main(annotate_args(no_ids, tmp_path / "a.jsonl", server.url)) == 3
        assert "no 'id'" in capsys.readouterr().err
        assert (
            main(annotate_args(tmp_path / "missing.jsonl", tmp_path / "a.jsonl", server.url)) == 3
        )
        assert server.requests == []
    assert main(["annotate", "--input", str(no_ids), "--judge", "gpt-4", "--output", "a.txt"]) == 2
    err = capsys.readouterr().err
    assert "--judge" in err and "--output must be a .jsonl" in err


def slow_grader(body: dict[str, Any], n: int) -> Reply:
    time.sleep(0.03)
    return Reply(text=f"Score: [[{1 + int(answer_of(body).split()[-1]) % 10}]]")


def test_killed_annotate_resumes_with_every_id_exactly_once(tmp_path: Path) -> None:
    n = 40
    inp = write_jsonl(tmp_path / "out.jsonl", [record(f"r{i}", f"answer {i}") for i in range(n)])
    out = tmp_path / "ann.jsonl"
    with FakeServer(slow_grader) as server:
        cmd = [
            sys.executable,
            "-m",
            "codit",
            *annotate_args(inp, out, server.url, "--chunk-size", "2", "--concurrency", "1"),
        ]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:
            if out.exists() and len(out.read_text().splitlines()) >= 6:
                break
            time.sleep(0.01)
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        partial = len(out.read_text().splitlines())
        assert 0 < partial < n, "the run should have been killed midway"
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        rows = read(out)  # every line parses
        assert sorted(r["id"] for r in rows) == sorted(f"r{i}" for i in range(n))
        assert all(r["annotation"]["score"] == 1 + int(r["id"][1:]) % 10 for r in rows)
        # one request at a time, each cached as it returns: at most the one in flight is repeated
        assert n <= len(server.requests) <= n + 1
    manifest = json.loads((tmp_path / "ann.manifest.json").read_text())
    assert len(manifest["runs"]) == 2 and manifest["runs"][1]["complete"] is True
