"""CodecLM end to end against a real OpenAI-compatible HTTP server with scripted replies
(``scripted_llm.codeclm_script``), with faults, a server that dies, resumption, the CLI, and the
local backend; outputs are checked with ``datasets`` and TRL's data utilities."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from codit.backends.spec import BackendConfig
from codit.errors import BackendError, ConfigError
from codit.pipelines.codeclm import CodecLMConfig, run_codeclm
from codit.pipelines.codeclm_parse import Metadata
from fakeserver import FakeServer, Reply
from scripted_llm import codeclm_reply, codeclm_script, faulty, prompt_kind

SEEDS = [
    "Write poem notes for me please",
    "Write recipe notes for dinner",
    "Write email notes to my boss",
]


@pytest.fixture
def server():
    with FakeServer(codeclm_script) as s:
        yield s


def write_seeds(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "seeds.jsonl"
    path.write_text(
        "".join(json.dumps({"id": f"s{i}", "instruction": t}) + "\n" for i, t in enumerate(SEEDS))
    )
    return path


def make_config(folder: Path, url: str, **kw) -> CodecLMConfig:
    settings = {
        "strong": f"openai:strong@{url}",
        "target": f"openai:target@{url}",
        "seeds": str(write_seeds(folder)),
        "output": str(folder / "out" / "codeclm.jsonl"),
        "num_instructions": 16,
        "pool_size": 4,
        "max_new_tokens": 64,
        "backend": BackendConfig(retry_delay=0.01, max_retries=2, concurrency=4),
    } | kw
    return CodecLMConfig(**settings)


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _essence(r: dict) -> tuple:
    return (r["messages"], r["meta"]["source"], r["meta"]["iteration"], r["meta"]["gap"])


def essence(path: Path) -> dict[str, tuple]:
    """What each record says, without the counts of re-asked replies (they differ under faults)."""
    return {r["id"]: _essence(r) for r in records(path)}


def request_key(body: dict) -> str:
    return json.dumps(
        {k: body.get(k) for k in ("model", "messages", "seed", "temperature")}, sort_keys=True
    )


def assert_trl_conversational(path: Path, tokenizer) -> None:
    """The file loads with ``datasets`` and every row is TRL conversational data."""
    from datasets import load_dataset

    trl = pytest.importorskip("trl.data_utils")
    rows = load_dataset("json", data_files=str(path), split="train")
    assert len(rows) == len(records(path)) and {"id", "messages", "meta"} <= set(rows.column_names)
    for row in rows:
        assert trl.is_conversational(row)
        assert [m["role"] for m in row["messages"]] == ["user", "assistant"]
        text = trl.maybe_apply_chat_template(row, tokenizer)["text"]
        assert row["messages"][0]["content"] in text and row["messages"][1]["content"] in text


def test_end_to_end_every_fate_of_the_filter(server: FakeServer, tmp_path: Path, tokenizer) -> None:
    config = make_config(tmp_path, server.url)
    report = run_codeclm(config)
    out = Path(config.output)
    kept = {r["id"]: r for r in records(out)}
    dropped = records(out.with_name("codeclm.dropped.jsonl"))

    # Each instruction's kind (written into it by the scripted decoder) fixes its fate.
    fates = {"easy": ("strong", 1, 6.0), "hard": ("strong", 3, 4.0), "reverse": ("target", 1, -6.0)}
    for record in kept.values():
        kind = record["messages"][0]["content"].split()[2].rstrip(":")
        source, iteration, gap = fates[kind]
        meta = record["meta"]
        assert (meta["source"], meta["iteration"], meta["gap"]) == (source, iteration, gap)
        assert record["messages"][1]["content"].startswith(source.upper())
        assert meta["history"][-1]["decision"] == f"kept_{source}"
    assert Counter(r["meta"]["basic_instruction"].split()[2] for r in kept.values()) == {
        "easy:": 4,
        "hard:": 4,
        "reverse:": 4,
    }
    assert len(dropped) == 4 and all(
        len(d["history"]) == 4 and "never" in d["instruction"] for d in dropped
    )
    # A hard instruction was improved twice with one rubric action each round.
    hard = next(r for r in kept.values() if " hard:" in r["meta"]["basic_instruction"])
    assert [s["gap"] for s in hard["meta"]["history"]] == [0.0, 2.0, 4.0]
    assert all(
        s["action"]["action"].startswith("add constraint") for s in hard["meta"]["history"][:2]
    )
    assert hard["messages"][0]["content"].count(" Also ") == 2
    # The judge's +1 for the first response is cancelled by the swapped second judgment.
    easy = next(r for r in kept.values() if " easy:" in r["meta"]["basic_instruction"])
    assert easy["meta"]["history"][0]["strong_scores"] == [10.0, 9.0]
    assert easy["meta"]["history"][0]["target_scores"] == [3.0, 4.0]

    assert report["complete"] and report["stages"]["encode"] == {
        "asked": 3,
        "labelled": 3,
        "failed": 0,
    }
    assert report["stages"]["pool"]["size"] == 4 and report["stages"]["pool"]["sampled"] == 1
    assert (
        report["stages"]["decode"]["written"] == 16 and report["stages"]["rubrics"]["pairs"] == 16
    )
    assert report["rounds"] == {
        "1": {"judged": 16, "kept_strong": 4, "kept_target": 4, "improved": 8},
        "2": {"judged": 8, "improved": 8},
        "3": {"judged": 8, "kept_strong": 4, "improved": 4},
        "4": {"judged": 4, "dropped": 4},
    }
    assert report["records"] == {
        "kept": 12,
        "kept_strong": 8,
        "kept_target": 4,
        "kept_in_first_round": 8,
        "first_round_share": 0.6667,
        "dropped": 4,
        "errors": 0,
        "errors_by_stage": {},
    }
    assert report["gaps"]["all"]["histogram"] == {"-6": 4, "0": 20, "2": 4, "4": 4, "6": 4}
    assert report["gaps"]["by_round"]["1"]["count"] == 16
    calls = sum(report["cost"][role]["calls"] for role in ("strong", "judge", "target"))
    assert calls == len(server.requests) == 3 + 4 + 4 + 2 * 36 + 2 * 36 + 20
    assert report["cost"]["target"]["calls"] == 36 and report["cost"]["judge"]["calls"] == 72
    assert report["cost"]["strong"]["prompt_tokens"] > 0
    assert json.loads(out.with_name("codeclm.report.json").read_text()) == report
    manifest = json.loads(out.with_name("codeclm.manifest.json").read_text())
    assert manifest["settings"]["strong"] == "openai:strong" and manifest["runs"][0]["complete"]

    # Structured output is asked for where a prompt has a schema, never for plain answers.
    formats = {
        prompt_kind(b): (b.get("response_format") or {}).get("json_schema", {}).get("name")
        for b in server.requests
    }
    assert formats == {
        "encode": "metadata",
        "decode": "instructions",
        "rubrics": "rubrics",
        "improve": "improved_instruction",
        "judge": None,  # the paper's judge answers one line of two scores: no JSON schema
        "answer": None,
    }
    judged = [b for b in server.requests if prompt_kind(b) == "judge"]
    assert all("single line" in b["messages"][-1]["content"] for b in judged)
    assert_trl_conversational(out, tokenizer)
    from codit.training.data import load_sft

    assert len(load_sft(out)) == 12  # codit's own SFT trainer reads the records

    # A rerun makes no call and writes nothing twice; the report still covers the whole dataset.
    server.requests.clear()
    again = run_codeclm(config)
    assert server.requests == [] and essence(out) == {k: _essence(v) for k, v in kept.items()}
    assert again["records"] == report["records"] and again["rounds"] == report["rounds"]
    assert again["stages"]["filter"]["already_done"] == 16
    assert again["cost"]["strong"]["calls"] == 0 and again["cost"]["strong"]["cache_hits"] == 8


def test_faults_429_500_malformed_empty_and_garbage_change_nothing(
    server: FakeServer, tmp_path: Path
) -> None:
    clean = make_config(tmp_path / "clean", server.url)
    run_codeclm(clean)
    server.requests.clear()
    server.script = faulty(
        codeclm_script,
        http_faults={
            0: Reply(status=429, headers={"Retry-After": "0"}),
            5: Reply(status=500),
            9: Reply(body=b"{not json"),
            30: Reply(status=503),
            31: Reply(body=b'{"choices": []}'),
        },
        garbage=("encode", "decode", "rubrics", "improve", "judge"),
        empty=("answer",),
    )
    config = make_config(tmp_path / "faulty", server.url)
    report = run_codeclm(config)
    assert essence(Path(config.output)) == essence(Path(clean.output))
    assert report["records"]["errors"] == 0 and report["complete"]
    unparsable = report["unparsable_replies"]
    assert unparsable["encode"] == 3 and unparsable["decode"] == 4 and unparsable["rubrics"] == 4
    assert unparsable["filter"] == 72 + 72 + 20  # every answer, judgment and improvement, once
    assert report["cost"]["strong"]["backend"]["retries"] >= 5


def test_unparsable_forever_is_an_error_record_not_a_crash(
    server: FakeServer, tmp_path: Path
) -> None:
    def script(body: dict, n: int) -> Reply:
        if prompt_kind(body) == "judge" and "Task 0 easy" in body["messages"][-1]["content"]:
            return Reply(text="Both answers are fine, really.")
        if (
            prompt_kind(body) == "answer"
            and body["model"] == "strong"
            and "Task 1 hard" in body["messages"][-1]["content"]
        ):
            return Reply(text="")  # an empty strong answer cannot be kept or judged
        return codeclm_script(body, n)

    server.script = script
    config = make_config(tmp_path, server.url, parse_retries=1)
    report = run_codeclm(config)
    errors = records(Path(config.output).with_name("codeclm.errors.jsonl"))
    judge_errors = [e for e in errors if e["stage"] == "judge"]
    assert len(judge_errors) == 4  # one "Task 0 easy" per metadata entry
    assert all(
        e["replies"] == ["Both answers are fine, really."] * 4 for e in judge_errors
    )  # 2 orders x 2 tries
    assert all("unparsable after 2 replies" in e["error"] for e in judge_errors)
    assert {e["stage"] for e in errors} == {"judge", "answer"}
    assert report["records"]["errors"] == 8 and report["records"]["kept"] == 4  # the reverse ones
    assert report["records"]["errors_by_stage"] == {"judge": 4, "answer": 4}


def test_server_dying_midway_then_rerun_completes_from_the_cache(tmp_path: Path) -> None:
    with FakeServer(codeclm_script) as reference_server:
        reference = make_config(tmp_path / "reference", reference_server.url)
        run_codeclm(reference)

    with FakeServer() as dying:

        def script(body: dict, n: int) -> Reply:
            if n < 90:
                return codeclm_script(body, n)
            dying.stop_soon()
            return Reply(drop=True)

        dying.script = script
        config = make_config(tmp_path / "run", dying.url)
        with pytest.raises(BackendError, match="cannot reach"):
            run_codeclm(config)
    out = Path(config.output)
    partial = json.loads(out.with_name("codeclm.report.json").read_text())
    assert not partial["complete"] and partial["records"]["kept"] < 12
    answered = {request_key(b) for b in dying.requests[:90]}

    with FakeServer(codeclm_script) as healthy:
        report = run_codeclm(make_config(tmp_path / "run", healthy.url))
    assert report["complete"]
    assert not {request_key(b) for b in healthy.requests} & answered  # nothing asked twice
    assert essence(out) == essence(Path(reference.output))
    ids = [r["id"] for r in records(out)] + [
        r["id"] for r in records(out.with_name("codeclm.dropped.jsonl"))
    ]
    assert len(ids) == len(set(ids)) == 16
    manifest = json.loads(out.with_name("codeclm.manifest.json").read_text())
    assert [r["complete"] for r in manifest["runs"]] == [False, True]


def test_server_refusing_structured_output_falls_back_to_text(
    server: FakeServer, tmp_path: Path
) -> None:
    def script(body: dict, n: int) -> Reply:
        if "response_format" in body:
            return Reply(status=400, error="response_format of type json_schema is not supported")
        return Reply(text=codeclm_reply(body))

    server.script = script
    config = make_config(
        tmp_path, server.url, backend=BackendConfig(retry_delay=0.01, concurrency=1)
    )
    report = run_codeclm(config)
    assert report["records"]["kept"] == 12
    structured = [b for b in server.requests if "response_format" in b]
    assert len(structured) == 1 and server.requests[0] is structured[0]  # asked once, then text
    assert report["cost"]["strong"]["backend"]["structured_fallbacks"] == 1
    assert report["cost"]["strong"]["failed"] == 0

    no_schema = make_config(
        tmp_path / "plain", server.url, backend=BackendConfig(structured_output=False)
    )
    server.requests.clear()
    run_codeclm(no_schema)
    assert not any("response_format" in b for b in server.requests)


def test_pool_only_then_hand_edited_pool_and_the_filter_hook(
    server: FakeServer, tmp_path: Path
) -> None:
    config = make_config(tmp_path, server.url, pool_only=True, pool_size=6)
    seen: list[Metadata] = []
    report = run_codeclm(config, metadata_filter=lambda m: seen.append(m) or len(m.skills) > 1)
    pool_path = Path(config.output).with_name("codeclm.pool.jsonl")
    pool = records(pool_path)
    assert (
        report["stages"]["pool"]["refused_by_filter"] == sum(len(m.skills) == 1 for m in seen) > 0
    )
    assert all(len(p["skills"]) > 1 for p in pool if p["origin"] == "sampled")
    assert records(Path(config.output)) == [] and not any(
        prompt_kind(b) == "answer" for b in server.requests
    )

    pool_path.write_text(json.dumps(pool[0]) + "\n")  # keep one entry, by hand
    server.requests.clear()
    report = run_codeclm(make_config(tmp_path, server.url, pool_size=6))
    assert not any(prompt_kind(b) == "encode" for b in server.requests)
    assert report["stages"]["decode"]["entries"] == 1 and report["records"]["kept"] == 12
    assert {r["meta"]["metadata"]["use_case"] for r in records(Path(config.output))} == {
        pool[0]["use_case"]
    }


def test_explained_judge_format_asks_for_json_and_gives_the_same_gaps(
    server: FakeServer, tmp_path: Path
) -> None:
    plain = run_codeclm(make_config(tmp_path / "plain", server.url))
    server.requests.clear()
    explained = run_codeclm(
        make_config(tmp_path / "explained", server.url, judge_format="explained")
    )
    judged = [b for b in server.requests if prompt_kind(b) == "judge"]
    assert len(judged) == 72
    assert all(b["response_format"]["json_schema"]["name"] == "scores" for b in judged)
    assert all("Explain your assessment" in b["messages"][-1]["content"] for b in judged)
    # the scripted judge scores alike in both formats, so every decision is the same
    assert explained["records"] == plain["records"] and explained["rounds"] == plain["rounds"]


def test_num_pairs_tops_up_until_that_many_are_kept(server: FakeServer, tmp_path: Path) -> None:
    # Pass 1 asks for 14 instructions (4 entries get 4, 4, 3, 3; the kinds cycle easy, hard,
    # never, reverse): 10 are kept, the 4 "never" dropped. 4 pairs are missing and 10/14 were
    # kept, so pass 2 asks for ceil(4 * 14 / 10) = 6, shared out from entry 3 on (2, 2, 1, 1:
    # easy, hard, easy, hard, easy, easy); the filter takes only 4 at a time, all 4 are kept,
    # and the last 2 are never filtered.
    config = make_config(tmp_path, server.url, num_pairs=14, num_instructions=999)
    report = run_codeclm(config)
    kept = records(Path(config.output))
    assert len(kept) == 14 and report["records"]["kept"] == 14
    assert report["stages"]["pairs"] == {"wanted": 14, "kept": 14, "stopped": "reached"}
    passes = report["stages"]["decode"]["passes"]
    assert [(p["asked"], p["written"]) for p in passes] == [(14, 14), (6, 6)]
    assert report["stages"]["filter"]["not_filtered"] == 2
    topped = [r for r in kept if "(batch 1)" in r["meta"]["basic_instruction"]]
    assert len(topped) == 4 and all("-p1-" in r["id"] for r in topped)
    assert len({r["id"] for r in kept}) == 14
    # a rerun makes no call and keeps no more
    server.requests.clear()
    again = run_codeclm(config)
    assert server.requests == [] and again["stages"]["pairs"]["kept"] == 14


def test_num_pairs_reports_a_spent_pool(tmp_path: Path) -> None:
    def same_every_time(body, n):  # the strong model only ever repeats its first instructions
        return codeclm_script({**body, "seed": 0}, n)

    with FakeServer(same_every_time) as s:
        config = make_config(tmp_path, s.url, num_pairs=40)
        report = run_codeclm(config)
    assert report["stages"]["pairs"] == {"wanted": 40, "kept": 32, "stopped": "pool spent"}
    # pass 1: 10 instructions per entry, 32 kept (2 "never" per entry); pass 2 asks for
    # ceil(8 / 0.8) = 10 and gets only repeats
    passes = report["stages"]["decode"]["passes"]
    assert [(p["asked"], p["written"]) for p in passes] == [(40, 40), (10, 0)]
    assert passes[1]["duplicates"] == 10


def test_rerun_with_other_settings_is_refused(server: FakeServer, tmp_path: Path) -> None:
    run_codeclm(make_config(tmp_path, server.url, num_instructions=4))
    with pytest.raises(ConfigError, match="gap_threshold=3.0, not 2.0"):
        run_codeclm(make_config(tmp_path, server.url, num_instructions=4, gap_threshold=2.0))


def test_config_errors_are_collected() -> None:
    with pytest.raises(ConfigError) as info:
        CodecLMConfig(
            target="vllm:x", seeds="s.jsonl", output="out.json", gap_threshold=-1, max_iterations=0
        )
    message = str(info.value)
    for part in (
        "--strong is required",
        "--target:",
        "--output must be a .jsonl",
        "--gap-threshold must be >= 0, got -1",
        "--max-iterations must be >= 1, got 0",
    ):
        assert part in message


def test_cli_help_run_and_errors(
    server: FakeServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from codit.cli.main import main

    with pytest.raises(SystemExit) as exited:
        main(["codeclm", "--help"])
    assert exited.value.code == 0 and "--gap-threshold" in capsys.readouterr().out

    out = tmp_path / "cli" / "data.jsonl"
    argv = [
        "codeclm",
        "--strong",
        f"openai:strong@{server.url}",
        "--target",
        f"openai:target@{server.url}",
        "--seeds",
        str(write_seeds(tmp_path)),
        "--prompt-field",
        "instruction",
        "--output",
        str(out),
        "--num-instructions",
        "8",
        "--pool-size",
        "2",
        "--max-new-tokens",
        "32",
        "--retry-delay",
        "0.01",
        "--no-progress",
    ]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "codit: 6 kept (6 strong, 0 target), 2 dropped by the filter, 0 failed" in err
    assert "codit: judge (openai:strong):" in err and "report ->" in err
    assert len(records(out)) == 6

    assert main(["codeclm", "--output", "x.json", "--gap-threshold", "-1"]) == 2
    err = capsys.readouterr().err
    assert (
        "--strong is required" in err
        and "--output must be a .jsonl" in err
        and "--gap-threshold" in err
    )
    assert main(argv[:-1] + ["--no-progress", "--seeds", str(tmp_path / "missing.jsonl")]) == 3


def test_local_target_through_codits_engine(
    server: FakeServer, tmp_path: Path, pair_dirs, tokenizer
) -> None:
    instruct, _ = pair_dirs
    config = make_config(
        tmp_path,
        server.url,
        target=f"local:{instruct}",
        num_instructions=4,
        pool_size=1,
        max_new_tokens=6,
        backend=BackendConfig(device="cpu", retry_delay=0.01),
    )
    report = run_codeclm(config)
    assert report["complete"] and report["cost"]["target"]["model"] == f"local:{instruct}"
    assert (
        report["cost"]["target"]["calls"] > 0 and report["cost"]["target"]["completion_tokens"] > 0
    )
    # each of the 4 basic instructions ends exactly once: kept, dropped or an error
    records = report["records"]
    assert records["kept"] + records["dropped"] + records["errors"] == 4
    assert len(Path(config.output).read_text().splitlines()) == records["kept"]
    assert_trl_conversational(Path(config.output), tokenizer)


def _tiny_built() -> bool:
    from codit.models.loading import TINY_MODELS_DIR

    return (TINY_MODELS_DIR / "tiny-instruct" / "config.json").exists()


@pytest.mark.skipif(
    not _tiny_built(),
    reason="the built-in tiny pair is not built (codit tiny build), so local:tiny-instruct cannot run",
)
def test_builtin_tiny_instruct_as_target(server: FakeServer, tmp_path: Path, tokenizer) -> None:
    config = make_config(
        tmp_path,
        server.url,
        target="local:tiny-instruct",
        num_instructions=4,
        pool_size=1,
        max_new_tokens=16,
        backend=BackendConfig(device="cpu", retry_delay=0.01),
    )
    report = run_codeclm(config)
    assert report["complete"] and report["cost"]["target"]["calls"] > 0
    assert_trl_conversational(Path(config.output), tokenizer)
