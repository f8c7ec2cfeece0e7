"""``codit generate --num-samples N``: N records per prompt, distinct and reproducible from the
seed, with their prompt id and sample index; and the pure expansion behind it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codit.cli.main import main
from codit.generation.samples import expand_samples, sample_meta, sample_of
from codit.io.prompts import PromptRecord

PROMPTS = ["Describe Saffronholt.", "What does the cloudfox eat?"]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def args(pair_dirs: tuple[Path, Path]):
    """The flags of a direct run with the random test instruct model (it samples widely)."""

    def make(inp: Path, out: Path, *extra: str) -> list[str]:
        return _args(str(pair_dirs[0]), inp, out, *extra)

    return make


def _args(instruct: str, inp: Path, out: Path, *extra: str) -> list[str]:
    return [
        "generate",
        "--instruct",
        instruct,
        "--mode",
        "direct",
        "--input",
        str(inp),
        "--output",
        str(out),
        "--max-new-tokens",
        "16",
        "--no-progress",
        *extra,
    ]


@pytest.fixture
def prompts(tmp_path: Path) -> Path:
    return write_jsonl(
        tmp_path / "p.jsonl", [{"id": f"q{i}", "prompt": p} for i, p in enumerate(PROMPTS)]
    )


def test_n_samples_per_prompt_are_distinct_and_reproducible(
    prompts: Path, tmp_path: Path, args
) -> None:
    out = tmp_path / "a.jsonl"
    assert main(args(prompts, out, "--num-samples", "3", "--seed", "5")) == 0
    rows = read(out)
    assert sorted(r["id"] for r in rows) == sorted(f"q{i}#s{k}" for i in range(2) for k in range(3))
    for r in rows:
        pid, k = r["id"].split("#s")
        assert (r["meta"]["prompt_id"], r["meta"]["sample"], r["meta"]["num_samples"]) == (
            pid,
            int(k),
            3,
        )
        assert r["meta"]["seed"] == 5 and r["messages"][0]["content"] == PROMPTS[int(pid[1:])]
    for i in range(2):
        texts = [r["messages"][-1]["content"] for r in rows if r["meta"]["prompt_id"] == f"q{i}"]
        assert len(set(texts)) == 3, texts  # three different streams

    again = tmp_path / "b.jsonl"
    assert main(args(prompts, again, "--num-samples", "3", "--seed", "5")) == 0
    by_id = {r["id"]: r["messages"] for r in rows}
    assert {r["id"]: r["messages"] for r in read(again)} == by_id

    other = tmp_path / "c.jsonl"
    assert main(args(prompts, other, "--num-samples", "3", "--seed", "6")) == 0
    assert {r["id"]: r["messages"] for r in read(other)} != by_id

    # sample k does not depend on N: the first two of three are the two of two
    two = tmp_path / "d.jsonl"
    assert main(args(prompts, two, "--num-samples", "2", "--seed", "5")) == 0
    assert all(by_id[r["id"]] == r["messages"] for r in read(two))


def test_one_sample_is_a_plain_run_and_n_cannot_change_on_resume(
    prompts: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], args
) -> None:
    out = tmp_path / "a.jsonl"
    assert main(args(prompts, out)) == 0
    rows = read(out)
    assert sorted(r["id"] for r in rows) == ["q0", "q1"]  # in order of finishing
    assert all("sample" not in r["meta"] and "prompt_id" not in r["meta"] for r in rows)
    assert main(args(prompts, out, "--num-samples", "2")) == 2
    assert "num_samples" in capsys.readouterr().err


@pytest.mark.parametrize("flags", [("--temperature", "0"), ("--top-k", "1")])
def test_several_greedy_samples_are_refused(
    prompts: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: tuple[str, str], args
) -> None:
    assert main(args(prompts, tmp_path / "a.jsonl", "--num-samples", "4", *flags)) == 2
    err = capsys.readouterr().err
    assert "--num-samples 4 needs sampling" in err
    assert main(args(prompts, tmp_path / "a.jsonl", "--num-samples", "0")) == 2


def test_expansion_is_pure_and_reversible() -> None:
    prompts = [
        PromptRecord("p#s1", [{"role": "user", "content": "x"}], 1),
        PromptRecord("b", [], 2),
    ]
    assert expand_samples(prompts, 1) is prompts
    expanded = expand_samples(prompts, 2)
    assert [p.id for p in expanded] == ["p#s1#s0", "p#s1#s1", "b#s0", "b#s1"]
    assert [p.line for p in expanded] == [1, 1, 2, 2]
    assert sample_meta("p#s1#s1", 2) == {"prompt_id": "p#s1", "sample": 1, "num_samples": 2}
    assert sample_meta("p#s1", 1) == {}
    with pytest.raises(ValueError):
        sample_meta("plain", 2)
    assert sample_of({"id": "p#s1#s0", "meta": {"prompt_id": "p#s1", "sample": 0}}) == ("p#s1", 0)
    assert sample_of({"id": "p#s3", "meta": {}}) == ("p#s3", None)  # no sample meta: its own prompt
