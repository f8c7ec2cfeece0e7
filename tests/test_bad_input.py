"""Bad input anywhere: every writing command names every bad line in one sentence, exits non-zero
without a traceback, and writes (or loses) no output record. With ``--skip-invalid`` the bad
lines go to the errors file, once, and the run goes on."""

from __future__ import annotations

import codecs
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from codit.cli.main import main
from codit.io.prompts import read_prompt_set

URL = "http://127.0.0.1:9/v1"  # never reached: every case fails before any request
OLD = '{"id": "old", "note": "a record of an earlier run"}\n'

IFEVAL_ROW = {
    "key": 1,
    "prompt": "Write without commas.",
    "instruction_id_list": ["punctuation:no_comma"],
    "kwargs": [{}],
}


def jsonl(*rows: object) -> bytes:
    return b"".join((r if isinstance(r, bytes) else json.dumps(r).encode()) + b"\n" for r in rows)


# --- the commands: where the bad file goes, and where their records would go ---------------


def generate(t: Path, name: str) -> list[str]:
    return ["generate", "--input", str(t / name), "--output", str(t / "out.jsonl")]


def paraphrase(t: Path, name: str) -> list[str]:
    return ["paraphrase", "--input", str(t / name), "--output", str(t / "out.jsonl")]


def codeclm(t: Path, name: str) -> list[str]:
    return [
        "codeclm",
        "--strong",
        f"openai:s@{URL}",
        "--target",
        f"openai:t@{URL}",
        "--seeds",
        str(t / name),
        "--output",
        str(t / "out.jsonl"),
    ]


def ecd(t: Path, name: str) -> list[str]:
    return [
        "ecd",
        "--evolver",
        f"openai:e@{URL}",
        "--responder",
        f"openai:r@{URL}",
        "--seeds",
        str(t / name),
        "--output",
        str(t / "out.jsonl"),
    ]


def ifeval_responses(t: Path, name: str) -> list[str]:
    (t / "ifeval.jsonl").write_bytes(jsonl(IFEVAL_ROW))
    return [
        "eval",
        "ifeval",
        "--responses",
        str(t / name),
        "--input-data",
        str(t / "ifeval.jsonl"),
        "--output",
        str(t / "out"),
    ]


def ifeval_input(t: Path, name: str) -> list[str]:
    (t / "r.jsonl").write_bytes(jsonl({"key": 1, "response": "ok"}))
    return [
        "eval",
        "ifeval",
        "--responses",
        str(t / "r.jsonl"),
        "--input-data",
        str(t / name),
        "--output",
        str(t / "out"),
    ]


def judge(t: Path, name: str) -> list[str]:
    (t / "b.jsonl").write_bytes(jsonl({"id": "p1", "prompt": "Q", "response": "b"}))
    return [
        "eval",
        "judge",
        "--a",
        str(t / name),
        "--b",
        str(t / "b.jsonl"),
        "--judge",
        f"openai:j@{URL}",
        "--output",
        str(t / "out"),
    ]


def generate_yaml(t: Path, name: str) -> list[str]:
    (t / "p.jsonl").write_text('{"prompt": "hi"}\n')
    return [
        "generate",
        "--config",
        str(t / name),
        "--input",
        str(t / "p.jsonl"),
        "--output",
        str(t / "out.jsonl"),
    ]


def experiment_yaml(t: Path, name: str) -> list[str]:
    return ["experiment", "codit", "--config", str(t / name), "--output", str(t / "out")]


def tiny_yaml(t: Path, name: str) -> list[str]:
    return ["tiny", "build", "--config", str(t / name), "--output-dir", str(t / "out")]


Command = Callable[[Path, str], list[str]]
MANY = jsonl(*({"id": f"q{i}", "prompt": " "} for i in range(25)), {"id": "ok", "prompt": "hi"})

# name -> (command, file name, file bytes, exit code, what the message must say)
CASES: dict[str, tuple[Command, str, bytes, int, str]] = {
    # generate: every input format and every check
    "generate invalid utf-8": (
        generate,
        "p.jsonl",
        jsonl({"prompt": "ok"}, b'{"prompt": "caf\xe9"}'),
        3,
        "p.jsonl, line 2: not valid UTF-8 (byte 0xe9 at column 16)",
    ),
    "generate utf-16": (
        generate,
        "p.jsonl",
        codecs.BOM_UTF16_LE + '{"prompt": "x"}'.encode("utf-16-le"),
        3,
        "is UTF-16",
    ),
    "generate json object": (
        generate,
        "p.json",
        b'{"a": 1, "b": 2}',
        3,
        "holds an object, not a list of records",
    ),
    "generate not parquet": (
        generate,
        "p.parquet",
        b"id,prompt\n1,hi\n",
        3,
        "is not a Parquet file",
    ),
    "generate binary csv": (generate, "p.csv", b"\x00\x01\x02PK\x03\x04", 3, "is not a CSV file"),
    "generate csv extra field": (
        generate,
        "p.csv",
        b"id,prompt\n1,hi\n2,hi,extra\n",
        3,
        "p.csv, line 3: more fields than the header's 2",
    ),
    "generate csv invalid utf-8": (
        generate,
        "p.csv",
        b"id,prompt\n1,caf\xe9\n",
        3,
        "p.csv, line 2: not valid UTF-8",
    ),
    "generate not json": (
        generate,
        "p.jsonl",
        b'{"prompt": oops}\n',
        3,
        "p.jsonl, line 1: not valid JSON",
    ),
    "generate json list line": (
        generate,
        "p.jsonl",
        b'["hi"]\n',
        3,
        "line 1: a JSON list, not an object",
    ),
    "generate prompt wrong type": (
        generate,
        "p.jsonl",
        jsonl({"prompt": 42}),
        3,
        "field 'prompt' must be a text or a non-empty list of messages, not int",
    ),
    "generate id wrong type": (
        generate,
        "p.jsonl",
        jsonl({"id": [1], "prompt": "hi"}),
        3,
        "the id in field 'id' must be a string or an integer, not list",
    ),
    "generate whitespace prompt": (
        generate,
        "p.jsonl",
        jsonl({"prompt": " \t\n"}),
        3,
        "line 1: the prompt in field 'prompt' is empty",
    ),
    "generate duplicate ids": (
        generate,
        "p.jsonl",
        jsonl({"id": 1, "prompt": "a"}, {"id": "1", "prompt": "b"}),
        3,
        "line 2: id '1' already appears on line 1; ids must be unique",
    ),
    "generate no user turn": (
        generate,
        "p.jsonl",
        jsonl({"messages": [{"role": "system", "content": "x"}]}),
        3,
        "the conversation in 'messages' has no user turn",
    ),
    "generate unknown role": (
        generate,
        "p.jsonl",
        jsonl({"messages": [{"role": "robot", "content": "x"}]}),
        3,
        "message 1 in 'messages' has role 'robot'",
    ),
    "generate content not text": (
        generate,
        "p.jsonl",
        jsonl({"messages": [{"role": "user", "content": 3}]}),
        3,
        "message 1 in 'messages' has no text content (got int)",
    ),
    "generate no prompt field": (
        generate,
        "p.jsonl",
        jsonl({"text": "hi"}),
        3,
        "no prompt field; its fields are ['text']",
    ),
    "generate 25 bad lines": (generate, "p.jsonl", MANY, 3, "has 25 invalid lines"),
    # YAML configs
    "generate yaml unknown key": (
        generate_yaml,
        "c.yaml",
        b"alpha: 0.1\nalhpa: 0.2\n",
        2,
        "c.yaml, line 2: unknown key 'alhpa' (did you mean 'alpha'?)",
    ),
    "generate yaml mistyped": (
        generate_yaml,
        "c.yaml",
        b"max_new_tokens: lots\n",
        2,
        "c.yaml, line 1: max_new_tokens must be an integer, not 'lots'",
    ),
    "generate yaml invalid utf-8": (
        generate_yaml,
        "c.yaml",
        b"system_prompt: caf\xe9\n",
        3,
        "c.yaml, line 1: not valid UTF-8",
    ),
    "generate yaml not a mapping": (
        generate_yaml,
        "c.yaml",
        b"- a\n- b\n",
        3,
        "must hold a mapping",
    ),
    "experiment yaml unknown key": (
        experiment_yaml,
        "c.yaml",
        b"seeds: 2\nsede: 1\n",
        2,
        "c.yaml, line 2: unknown key 'sede'",
    ),
    "tiny build yaml mistyped": (
        tiny_yaml,
        "c.yaml",
        b"seed: zero\n",
        2,
        "c.yaml, line 1: seed must be an integer, not 'zero'",
    ),
    # paraphrase
    "paraphrase invalid utf-8": (
        paraphrase,
        "p.jsonl",
        b'{"prompt": "a\xff", "completion": "b"}\n',
        3,
        "p.jsonl, line 1: not valid UTF-8",
    ),
    "paraphrase duplicate ids": (
        paraphrase,
        "p.jsonl",
        jsonl(
            {"id": "a", "prompt": "x y", "completion": "b"},
            {"id": "a", "prompt": "z w", "completion": "c"},
        ),
        3,
        "line 2: id 'a' already appears on line 1",
    ),
    "paraphrase empty instruction": (
        paraphrase,
        "p.jsonl",
        jsonl({"instruction": "  ", "output": "b"}),
        3,
        "the instruction is empty",
    ),
    "paraphrase no answer": (
        paraphrase,
        "p.jsonl",
        jsonl({"messages": [{"role": "user", "content": "hi"}]}),
        3,
        "'messages' must end with a user turn and the assistant's answer",
    ),
    # codeclm and ecd seeds
    "codeclm empty seed": (
        codeclm,
        "s.jsonl",
        jsonl({"instruction": ""}),
        3,
        "the prompt in field 'instruction' is empty",
    ),
    "codeclm duplicate seeds": (
        codeclm,
        "s.jsonl",
        jsonl({"id": "s", "prompt": "a"}, {"id": "s", "prompt": "b"}),
        3,
        "id 's' already appears on line 1",
    ),
    "ecd unknown role": (
        ecd,
        "s.jsonl",
        jsonl({"messages": [{"from": "alien", "value": "x"}]}),
        3,
        "has role 'alien'",
    ),
    "ecd bom and a bad line": (
        ecd,
        "s.jsonl",
        codecs.BOM_UTF8 + jsonl({"prompt": "fine"}, b"{not json"),
        3,
        "s.jsonl, line 2: not valid JSON",
    ),
    # eval ifeval and judge
    "ifeval responses invalid utf-8": (
        ifeval_responses,
        "r.jsonl",
        b'{"key": 1, "response": "\xc3("}\n',
        3,
        "r.jsonl, line 1: not valid UTF-8",
    ),
    "ifeval responses no response": (
        ifeval_responses,
        "r.jsonl",
        jsonl({"key": 1, "answer": "x"}, {"key": 2, "text": "y"}),
        3,
        "r.jsonl has 2 invalid lines",
    ),
    "ifeval input wrong types": (
        ifeval_input,
        "i.jsonl",
        jsonl({**IFEVAL_ROW, "kwargs": "none"}),
        3,
        "i.jsonl, line 1: 'kwargs' must be a list of objects",
    ),
    "ifeval input duplicate keys": (
        ifeval_input,
        "i.jsonl",
        jsonl(IFEVAL_ROW, IFEVAL_ROW),
        3,
        "i.jsonl, line 2: key 1 appears twice",
    ),
    "judge not json": (
        judge,
        "a.jsonl",
        b'{"id": "p1", "prompt": "Q", "response": "a"}\n{oops\n',
        3,
        "a.jsonl, line 2: not valid JSON",
    ),
    "judge last turn not the answer": (
        judge,
        "a.jsonl",
        jsonl({"id": "p1", "messages": [{"role": "user", "content": "Q"}]}),
        3,
        "the last turn of 'messages' is not the assistant's response",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_named_with_its_line_and_writes_nothing(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    command, name, content, code, needle = CASES[case]
    (tmp_path / name).write_bytes(content)
    (tmp_path / "out.jsonl").write_text(OLD)  # an earlier run's record must survive
    assert main(command(tmp_path, name)) == code
    err = capsys.readouterr().err
    assert needle in err, err
    assert "Traceback" not in err
    assert len([line for line in err.splitlines() if line.startswith("codit: error: ")]) == 1
    assert (tmp_path / "out.jsonl").read_text() == OLD
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    assert not (tmp_path / "out.errors.jsonl").exists()


def test_many_bad_lines_show_the_first_twenty_and_a_count(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "p.jsonl").write_bytes(MANY)
    assert main(generate(tmp_path, "p.jsonl")) == 3
    err = capsys.readouterr().err
    listed = [line for line in err.splitlines() if "the prompt in field 'prompt' is empty" in line]
    assert len(listed) == 20
    assert "p.jsonl, line 20:" in err and "p.jsonl, line 21:" not in err
    assert err.rstrip().endswith("... and 5 more")


def test_bom_and_crlf_are_read_like_plain_utf8(tmp_path: Path) -> None:
    plain = tmp_path / "plain.jsonl"
    plain.write_bytes(jsonl({"id": "a", "prompt": "caf\u00e9"}, {"id": "b", "prompt": "x"}))
    odd = tmp_path / "odd.jsonl"
    odd.write_bytes(codecs.BOM_UTF8 + plain.read_bytes().replace(b"\n", b"\r\n"))
    csv = tmp_path / "odd.csv"
    csv.write_bytes(codecs.BOM_UTF8 + "id,prompt\r\na,caf\u00e9\r\nb,x\r\n".encode())
    expected = [(r.id, r.messages) for r in read_prompt_set(plain).records]
    assert expected == [
        ("a", [{"role": "user", "content": "caf\u00e9"}]),
        ("b", [{"role": "user", "content": "x"}]),
    ]
    assert [(r.id, r.messages) for r in read_prompt_set(odd).records] == expected
    assert [(r.id, r.messages) for r in read_prompt_set(csv).records] == expected


def test_skip_invalid_logs_bad_lines_once_and_goes_on(tmp_path: Path) -> None:
    rows = [
        {"id": "a", "prompt": "Write a short poem about the sea", "completion": "Waves."},
        b'{"id": "broken"',
        {"id": "b", "prompt": "   ", "completion": "x"},
        {"id": "c", "prompt": "Explain why the sky looks blue", "completion": "Light."},
        {"id": "a", "prompt": "Write a short poem about the sea again", "completion": "More."},
    ]
    (tmp_path / "p.jsonl").write_bytes(jsonl(*rows))
    args = [*paraphrase(tmp_path, "p.jsonl"), "--levels", "sentence", "--skip-invalid"]
    (tmp_path / "out.jsonl").unlink(missing_ok=True)
    for _ in range(2):  # the rerun adds nothing, and logs nothing twice
        assert main(args) == 0
        out = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
        assert sorted(r["id"] for r in out) == ["a", "c"]
        errors = [
            json.loads(line) for line in (tmp_path / "out.errors.jsonl").read_text().splitlines()
        ]
        assert [e["input"].rsplit(", ", 1)[1] for e in errors] == ["line 2", "line 3", "line 5"]
        assert all(e["error"].startswith("invalid input: ") and "id" not in e for e in errors)
