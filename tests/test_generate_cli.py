"""`codit generate` end to end on locally saved models: formats, records, resume, bad input."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from codit.cli.main import main

PROMPTS = [
    "hello fox",
    "write three bullet points about apples",
    "the base model knows facts",
    "a small model answers",
]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def gen_args(pair_dirs, inp, out, *extra):
    instruct, base = pair_dirs
    return [
        "generate",
        "--instruct",
        str(instruct),
        "--base",
        str(base),
        "--input",
        str(inp),
        "--output",
        str(out),
        "--max-new-tokens",
        "6",
        "--no-progress",
        *extra,
    ]


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_generate_writes_trl_records_and_a_manifest(pair_dirs, tmp_path):
    inp = write_jsonl(
        tmp_path / "p.jsonl", [{"id": f"q{i}", "prompt": p} for i, p in enumerate(PROMPTS)]
    )
    out = tmp_path / "o" / "codit.jsonl"
    rc = main(
        gen_args(
            pair_dirs,
            inp,
            out,
            "--alpha",
            "0.05",
            "--beta",
            "0.8",
            "--temperature",
            "0.9",
            "--top-p",
            "0.95",
            "--top-k",
            "40",
            "--batch-size",
            "3",
            "--seed",
            "5",
            "--system-prompt",
            "be brief",
            "--chat-template-kwargs",
            "enable_thinking=false",
            "--device",
            "cpu",
            "--dtype",
            "float32",
            "--rule",
            "codit",
        )
    )
    assert rc == 0
    records = read(out)
    assert sorted(r["id"] for r in records) == ["q0", "q1", "q2", "q3"]
    for r in records:
        roles = [m["role"] for m in r["messages"]]
        assert roles == ["system", "user", "assistant"]
        meta = r["meta"]
        assert meta["mode"] == "codit" and meta["alpha"] == 0.05 and meta["beta"] == 0.8
        assert meta["finish_reason"] in ("stop", "length") and meta["prompt_tokens"] > 0
        assert 1 <= meta["completion_tokens"] <= 6
    manifest = json.loads((tmp_path / "o" / "codit.manifest.json").read_text())
    assert manifest["counts"]["records"] == 4
    assert manifest["models"]["instruct"]["fingerprint"] and manifest["models"]["base"][
        "path"
    ] == str(pair_dirs[1])
    assert manifest["environment"]["codit"] and manifest["runs"][-1]["written"] == 4
    assert manifest["settings"]["decoding"]["top_k"] == 40


def test_generate_is_the_same_as_a_python_function(pair_dirs, tmp_path):
    import codit
    from codit.decoding.config import DecodingConfig

    inp = write_jsonl(tmp_path / "p.jsonl", [{"prompt": p} for p in PROMPTS])
    summary = codit.generate(
        input=str(inp),
        output=str(tmp_path / "d.jsonl"),
        instruct=str(pair_dirs[0]),
        decoding=DecodingConfig(mode="direct", temperature=0.0, max_new_tokens=5),
    )
    assert summary.written == 4 and summary.failed == 0
    records = read(tmp_path / "d.jsonl")
    assert all(len(r["id"]) == 16 for r in records)  # hashed ids
    assert all("alpha" not in r["meta"] and r["meta"]["mode"] == "direct" for r in records)


@pytest.mark.parametrize("fmt", ["json", "csv", "parquet", "datasets", "messages", "sharegpt"])
def test_input_formats(pair_dirs, tmp_path, fmt):
    rows = [{"id": f"q{i}", "prompt": p} for i, p in enumerate(PROMPTS[:2])]
    if fmt == "json":
        inp = tmp_path / "p.json"
        inp.write_text(json.dumps(rows))
    elif fmt == "csv":
        inp = tmp_path / "p.csv"
        with inp.open("w", newline="") as f:
            w = csv.DictWriter(f, ["id", "prompt"])
            w.writeheader()
            w.writerows(rows)
    elif fmt in ("parquet", "datasets"):
        import datasets

        ds = datasets.Dataset.from_list(rows)
        inp = tmp_path / ("p.parquet" if fmt == "parquet" else "ds")
        ds.to_parquet(str(inp)) if fmt == "parquet" else ds.save_to_disk(str(inp))
    elif fmt == "messages":
        inp = write_jsonl(
            tmp_path / "p.jsonl",
            [
                {
                    "id": "q0",
                    "messages": [
                        {"role": "user", "content": "hi"},
                        {"role": "assistant", "content": "yo"},
                        {"role": "user", "content": PROMPTS[0]},
                        {"role": "assistant", "content": "old"},
                    ],
                },
                {"id": "q1", "messages": [{"role": "user", "content": PROMPTS[1]}]},
            ],
        )
    else:
        inp = write_jsonl(
            tmp_path / "p.jsonl",
            [
                {"id": "q0", "conversations": [{"from": "human", "value": PROMPTS[0]}]},
                {
                    "id": "q1",
                    "conversations": [
                        {"from": "human", "value": PROMPTS[1]},
                        {"from": "gpt", "value": "x"},
                    ],
                },
            ],
        )
    out = tmp_path / "o.jsonl"
    assert main(gen_args(pair_dirs, inp, out, "--mode", "direct")) == 0
    records = {r["id"]: r for r in read(out)}
    assert set(records) == {"q0", "q1"}
    if fmt == "messages":  # cut after the last user turn, earlier turns kept
        assert [m["content"] for m in records["q0"]["messages"][:3]] == ["hi", "yo", PROMPTS[0]]
        assert len(records["q0"]["messages"]) == 4


def test_rerun_skips_finished_ids_and_repairs_a_torn_line(pair_dirs, tmp_path):
    inp = write_jsonl(
        tmp_path / "p.jsonl", [{"id": f"q{i}", "prompt": p} for i, p in enumerate(PROMPTS)]
    )
    out = tmp_path / "o.jsonl"
    assert main(gen_args(pair_dirs, inp, out, "--limit", "2")) == 0
    with out.open("a") as f:
        f.write('{"id": "q2", "messages": [{"role": "us')  # a record torn by a crash
    assert main(gen_args(pair_dirs, inp, out)) == 0
    ids = [r["id"] for r in read(out)]
    assert sorted(ids) == ["q0", "q1", "q2", "q3"]
    manifest = json.loads(out.with_suffix(".manifest.json").read_text())
    assert [run["written"] for run in manifest["runs"]] == [2, 2]
    assert manifest["runs"][1]["already_done"] == 2


def test_killed_run_resumes_with_every_id_exactly_once(pair_dirs, tmp_path):
    n = 24
    inp = write_jsonl(
        tmp_path / "p.jsonl",
        [{"id": f"q{i}", "prompt": PROMPTS[i % 4] + f" {i}"} for i in range(n)],
    )
    out = tmp_path / "o.jsonl"
    args = gen_args(pair_dirs, inp, out)
    args[args.index("--max-new-tokens") + 1] = "16"
    cmd = [sys.executable, "-m", "codit", *args, "--batch-size", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if out.exists() and len(out.read_text().splitlines()) >= 3:
            break
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = len(out.read_text().splitlines())
    assert 0 < partial < n, "the run should have been killed midway"
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = out.read_text().splitlines()
    ids = [json.loads(line)["id"] for line in lines]  # every line parses
    assert sorted(ids) == sorted(f"q{i}" for i in range(n))


def test_too_long_prompt_goes_to_the_errors_file_and_the_run_goes_on(pair_dirs, tmp_path):
    inp = write_jsonl(
        tmp_path / "p.jsonl",
        [{"id": "long", "prompt": "fox " * 400}, {"id": "ok", "prompt": "hello"}],
    )
    out = tmp_path / "o.jsonl"
    assert main(gen_args(pair_dirs, inp, out)) == 0
    assert [r["id"] for r in read(out)] == ["ok"]
    errors = read(tmp_path / "o.errors.jsonl")
    assert errors[0]["id"] == "long" and "context" in errors[0]["error"] and errors[0]["line"] == 1
    # a rerun does not retry it (it is accounted for) unless asked to
    assert main(gen_args(pair_dirs, inp, out)) == 0
    assert len(read(tmp_path / "o.errors.jsonl")) == 1
    assert main(gen_args(pair_dirs, inp, out, "--retry-errors")) == 0
    assert len(read(tmp_path / "o.errors.jsonl")) == 1 and len(read(out)) == 1


def test_resume_with_other_settings_is_refused(pair_dirs, tmp_path, capsys):
    inp = write_jsonl(tmp_path / "p.jsonl", [{"prompt": "hello"}])
    out = tmp_path / "o.jsonl"
    assert main(gen_args(pair_dirs, inp, out)) == 0
    assert main(gen_args(pair_dirs, inp, out, "--alpha", "0.2")) == 2
    assert "alpha" in capsys.readouterr().err


def _incompatible_base(tmp_path: Path) -> Path:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    import tiny_models

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(
        ["completely different words here"] * 3,
        trainers.BpeTrainer(vocab_size=60, special_tokens=["<|end|>"]),
    )
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|end|>")
    path = tmp_path / "other"
    tiny_models.make_model(fast, 3).save_pretrained(path)
    fast.save_pretrained(path)
    return path


BAD = {
    "missing input": (lambda t, p: ["--input", str(t / "nope.jsonl")], 3, "does not exist"),
    "malformed line": (
        lambda t, p: ["--input", str(_text(t, '{"prompt": "ok"}\n{"prompt": oops}\n'))],
        3,
        "line 2",
    ),
    "missing field": (
        lambda t, p: [
            "--input",
            str(_text(t, '{"question_text": "x", "id": 1}\n')),
            "--prompt-field",
            "prompt",
        ],
        3,
        "['id', 'question_text']",
    ),
    "empty prompt": (lambda t, p: ["--input", str(_text(t, '{"prompt": "  "}\n'))], 3, "empty"),
    "alpha": (lambda t, p: ["--alpha", "1.5"], 2, "--alpha must be in [0, 1]"),
    "beta": (lambda t, p: ["--beta", "-1"], 2, "--beta must be >= 0"),
    "temperature": (lambda t, p: ["--temperature", "-0.5"], 2, "--temperature must be >= 0"),
    "not a number": (lambda t, p: ["--alpha", "high"], 2, "takes a number"),
    "unknown model": (
        lambda t, p: ["--instruct", str(t / "no-such-model")],
        4,
        "no model directory",
    ),
    "unwritable output": (
        lambda t, p: ["--output", str(_text(t, "x") / "o.jsonl")],
        3,
        "cannot write",
    ),
    "not jsonl output": (lambda t, p: ["--output", str(t / "o.txt")], 2, ".jsonl"),
    "incompatible pair": (
        lambda t, p: ["--base", str(_incompatible_base(t))],
        4,
        "do not share a vocabulary",
    ),
    "codit without base": (lambda t, p: ["--base", ""], 2, "needs --base"),
}


def _text(tmp_path: Path, text: str) -> Path:
    path = tmp_path / f"in{len(list(tmp_path.iterdir()))}.jsonl"
    path.write_text(text)
    return path


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_gives_one_sentence_and_an_exit_code(pair_dirs, tmp_path, capsys, case):
    make_args, code, needle = BAD[case]
    good = write_jsonl(tmp_path / "good.jsonl", [{"prompt": "hello"}])
    args = gen_args(pair_dirs, good, tmp_path / "o.jsonl")
    extra = make_args(tmp_path, pair_dirs)
    for flag, value in zip(extra[::2], extra[1::2], strict=True):  # replace or append each flag
        if flag in args:
            args[args.index(flag) + 1] = value
        else:
            args += [flag, value]
    if case == "not a number":
        with pytest.raises(SystemExit) as exit_info:
            main(args)
        assert exit_info.value.code == 2
    else:
        assert main(args) == code
    err = capsys.readouterr().err
    assert needle in err, err
    assert "Traceback" not in err
    error_lines = [line for line in err.splitlines() if "error" in line]
    assert len(error_lines) == 1


def test_debug_shows_the_traceback(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "codit",
            "generate",
            "--input",
            str(tmp_path / "x.jsonl"),
            "--output",
            str(tmp_path / "o.jsonl"),
            "--debug",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0 and "Traceback" in proc.stderr and "DataError" in proc.stderr


def test_help_imports_no_heavy_library_and_every_subcommand_has_help():
    # `codit --help` and `codit generate --help` are answered without importing torch,
    # transformers or trl: checked in a fresh interpreter after the help was printed.
    for args in ([], ["generate"]):
        check = (
            "import sys, codit.cli.main\n"
            "try:\n"
            f"    codit.cli.main.main({[*args, '--help']!r})\n"
            "except SystemExit as e:\n"
            "    assert e.code == 0, e.code\n"
            "heavy = sorted({'torch', 'transformers', 'trl'} & set(sys.modules))\n"
            "assert not heavy, heavy\n"
        )
        proc = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        assert "usage:" in proc.stdout
    from codit.cli.main import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name in sub.choices:
        proc = subprocess.run(
            [sys.executable, "-m", "codit", name, "--help"], capture_output=True, text=True
        )
        assert proc.returncode == 0, name
