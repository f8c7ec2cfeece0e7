"""IFEval on files: the real prompts parse, the CLI reports plausible GPT-4 numbers, and a
hand-made file gives exactly the accuracies computed by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codit.cli.main import main
from codit.errors import DataError
from codit.evaluation.checks import CHECKS
from codit.evaluation.ifeval import (
    IFEvalConfig,
    evaluate,
    load_prompts,
    match_responses,
    run_ifeval,
    summarize,
)
from codit.evaluation.responses import load_responses
from fakeserver import FakeServer, Reply

IFEVAL_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ifeval"
INPUT = IFEVAL_DIR / "input_data.jsonl"
GPT4 = IFEVAL_DIR / "input_response_data_gpt4.jsonl"
needs_ifeval = pytest.mark.skipif(
    not INPUT.is_file() or not GPT4.is_file(),
    reason=f"the shared IFEval data is not at {IFEVAL_DIR} (clone the repo with shared/ beside it)",
)


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@needs_ifeval
def test_every_real_prompt_parses_and_every_instruction_has_a_check() -> None:
    prompts = load_prompts(INPUT)
    assert len(prompts) == 541
    used = {i for p in prompts for i in p.instruction_id_list}
    assert used <= set(CHECKS)
    assert len(used) == 25


# Strict verdicts that pass, per instruction type, on the GPT-4 responses.
GPT4_STRICT_HITS = {
    "change_case:capital_word_frequency": 17,
    "change_case:english_capital": 19,
    "change_case:english_lowercase": 36,
    "combination:repeat_prompt": 26,
    "combination:two_responses": 22,
    "detectable_content:number_placeholders": 25,
    "detectable_content:postscript": 26,
    "detectable_format:constrained_response": 8,
    "detectable_format:json_format": 17,
    "detectable_format:multiple_sections": 13,
    "detectable_format:number_bullet_lists": 27,
    "detectable_format:number_highlighted_sections": 45,
    "detectable_format:title": 37,
    "keywords:existence": 38,
    "keywords:forbidden_words": 42,
    "keywords:frequency": 38,
    "keywords:letter_frequency": 21,
    "language:response_language": 30,
    "length_constraints:nth_paragraph_first_word": 9,
    "length_constraints:number_paragraphs": 23,
    "length_constraints:number_sentences": 35,
    "length_constraints:number_words": 37,
    "punctuation:no_comma": 44,
    "startend:end_checker": 22,
    "startend:quotation": 41,
}


@needs_ifeval
def test_cli_on_gpt4_responses(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "gpt4"
    assert (
        main(
            [
                "eval",
                "ifeval",
                "--responses",
                str(GPT4),
                "--input-data",
                str(INPUT),
                "--output",
                str(out),
            ]
        )
        == 0
    )
    metrics = json.loads((out / "metrics.json").read_text())
    # Exact counts on the 541 archived GPT-4 responses (834 instructions), pinned so that any
    # change to a check shows. They are this implementation's counts: the official one could
    # not be run beside it offline (its sentence counter needs NLTK's punkt data).
    assert metrics["num_prompts"] == 541 and metrics["num_instructions"] == 834
    assert metrics["prompt_level_strict"] == pytest.approx(417 / 541)
    assert metrics["instruction_level_strict"] == pytest.approx(698 / 834)
    assert metrics["prompt_level_loose"] == pytest.approx(431 / 541)
    assert metrics["instruction_level_loose"] == pytest.approx(714 / 834)
    strict_hits = {
        k: round(v * metrics["per_instruction_count"][k])
        for k, v in metrics["per_instruction"].items()
    }
    assert strict_hits == GPT4_STRICT_HITS
    assert metrics["missing_responses"] == 0 and metrics["unmatched_responses"] == 0
    assert set(metrics["per_instruction"]) == set(CHECKS)
    assert all(0 <= v <= 1 for v in metrics["per_instruction"].values())
    verdicts = [json.loads(line) for line in (out / "verdicts.jsonl").read_text().splitlines()]
    assert len(verdicts) == 541
    assert all(
        len(v["follow_strict"]) == len(v["instruction_id_list"]) == len(v["follow_loose"])
        for v in verdicts
    )
    assert (out / "per_instruction.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = capsys.readouterr().out
    assert "prompt-level accuracy" in table and "punctuation:no_comma" in table


PROMPTS = [
    {
        "key": 1,
        "prompt": "Write without commas.",
        "instruction_id_list": ["punctuation:no_comma"],
        "kwargs": [{}],
    },
    {
        "key": 2,
        "prompt": "Give a title and end with Bye.",
        "instruction_id_list": ["detectable_format:title", "startend:end_checker"],
        "kwargs": [{}, {"end_phrase": "Bye.", "keywords": None}],
    },
    {
        "key": 3,
        "prompt": "Use at least three words.",
        "instruction_id_list": ["length_constraints:number_words"],
        "kwargs": [{"num_words": 3, "relation": "at least"}],
    },
    {
        "key": 4,
        "prompt": "Quote everything.",
        "instruction_id_list": ["startend:quotation"],
        "kwargs": [{}],
    },
]


@pytest.fixture
def small_input(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "input.jsonl", PROMPTS)


@pytest.fixture
def small_responses(tmp_path: Path) -> Path:
    return write_jsonl(
        tmp_path / "responses.jsonl",
        [
            # codit's own generation record, matched by id
            {
                "id": "1",
                "messages": [
                    {"role": "user", "content": "Write without commas."},
                    {"role": "assistant", "content": "Sure, here:\nno commas here"},
                ],
                "meta": {"model": "m"},
            },
            # IFEval's format, matched by prompt text
            {"prompt": "Give a title and end with Bye.", "response": "<<T>>\nBody\nBye."},
            # TRL's prompt-completion format
            {"prompt": "Use at least three words.", "completion": "one two"},
            # answers no prompt of the input
            {"prompt": "Something else entirely.", "response": "whatever"},
        ],
    )


def test_hand_made_file_gives_hand_computed_accuracies(
    small_input: Path, small_responses: Path, tmp_path: Path
) -> None:
    metrics, paths = run_ifeval(
        IFEvalConfig(
            output=str(tmp_path / "out"),
            responses=str(small_responses),
            input_data=str(small_input),
        )
    )
    # Prompt 1 fails strict (a comma in the preamble) but passes loose (preamble dropped);
    # prompt 2 passes both instructions; prompt 3 has two words; prompt 4 has no response.
    assert metrics["prompt_level_strict"] == pytest.approx(1 / 4)
    assert metrics["prompt_level_loose"] == pytest.approx(2 / 4)
    assert metrics["instruction_level_strict"] == pytest.approx(2 / 5)
    assert metrics["instruction_level_loose"] == pytest.approx(3 / 5)
    assert metrics["per_instruction"]["punctuation:no_comma"] == 0.0
    assert metrics["per_instruction_loose"]["punctuation:no_comma"] == 1.0
    assert metrics["per_instruction"]["startend:end_checker"] == 1.0
    assert metrics["missing_responses"] == 1 and metrics["missing_keys"] == [4]
    assert metrics["unmatched_responses"] == 1
    verdicts = [json.loads(line) for line in paths["verdicts"].read_text().splitlines()]
    assert [v["key"] for v in verdicts] == [1, 2, 3, 4]
    assert verdicts[0]["follow_strict"] == [False] and verdicts[0]["follow_loose"] == [True]
    assert verdicts[1]["follow_strict"] == [True, True]
    assert verdicts[3]["missing"] is True and verdicts[3]["follow_loose"] == [False]
    assert paths["plot"].is_file()


def test_first_response_wins_and_duplicates_are_counted(small_input: Path, tmp_path: Path) -> None:
    responses = write_jsonl(
        tmp_path / "r.jsonl",
        [
            {"key": 1, "response": "no commas"},
            {"key": 1, "response": "with, commas"},
        ],
    )
    prompts = load_prompts(small_input)
    matching = match_responses(prompts, load_responses(responses))
    assert matching.by_key == {"1": "no commas"} and matching.duplicates == 1
    metrics = summarize(evaluate(prompts, matching.by_key))
    assert metrics["missing_responses"] == 3


def test_bad_inputs_are_data_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_prompts(tmp_path / "nope.jsonl")
    bad = write_jsonl(
        tmp_path / "bad.jsonl",
        [{"key": 1, "prompt": "p", "instruction_id_list": ["made:up"], "kwargs": [{}]}],
    )
    with pytest.raises(DataError, match="made:up"):
        load_prompts(bad)
    no_response = write_jsonl(tmp_path / "r.jsonl", [{"prompt": "p", "answer": "x"}])
    with pytest.raises(DataError, match="no response"):
        load_responses(no_response)


def test_config_errors_are_collected_in_one_wording() -> None:
    from codit.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        IFEvalConfig(responses="r.jsonl", model="m", limit=0, max_new_tokens=0)
    assert info.value.problems == [
        "--limit must be >= 1, got 0",
        "--max-new-tokens must be >= 1, got 0",
        "--output is required",
        "give exactly one of --responses FILE and --model MODEL",
    ]


def test_cli_needs_exactly_one_source(
    small_input: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["eval", "ifeval", "--input-data", str(small_input), "--output", str(tmp_path)]) == 2
    )
    assert "exactly one of --responses" in capsys.readouterr().err


def test_cli_model_generates_then_evaluates_and_resumes(small_input: Path, tmp_path: Path) -> None:
    answer = {
        "Write without commas.": "No commas at all",
        "Give a title and end with Bye.": "<<A title>>\nBye.",
    }

    def script(body: dict, n: int) -> Reply:
        prompt = body["messages"][-1]["content"]
        if prompt == "Quote everything.":
            return Reply(status=400, error="refused")  # recorded in errors.jsonl, not fatal
        return Reply(text=answer.get(prompt, "only two"))

    out = tmp_path / "out"
    with FakeServer(script) as server:
        args = [
            "eval",
            "ifeval",
            "--model",
            f"openai:fake@{server.url}",
            "--input-data",
            str(small_input),
            "--output",
            str(out),
            "--no-progress",
            "--retry-delay",
            "0.01",
        ]
        assert main(args) == 0
        assert len(server.requests) == 4
        assert server.requests[0]["max_tokens"] == 1280 and server.requests[0]["temperature"] == 0
        lines = (out / "responses.jsonl").read_text().splitlines()
        assert len(lines) == 3
        errors = [json.loads(line) for line in (out / "errors.jsonl").read_text().splitlines()]
        assert errors[0]["id"] == "4" and "refused" in errors[0]["error"]
        metrics = json.loads((out / "metrics.json").read_text())
        assert metrics["prompt_level_strict"] == pytest.approx(2 / 4)
        assert metrics["missing_keys"] == [4]
        # A rerun asks nothing (errors count as done, as in every command) ...
        assert main(args) == 0
        assert len(server.requests) == 4
        # ... unless asked to retry them: then only the prompt still unanswered is asked for.
        assert main([*args, "--retry-errors"]) == 0
        assert len(server.requests) == 5
        assert server.requests[-1]["messages"][-1]["content"] == "Quote everything."


def test_cli_model_with_a_local_model(
    pair_dirs: tuple[Path, Path], small_input: Path, tmp_path: Path
) -> None:
    instruct, _ = pair_dirs
    out = tmp_path / "local"
    assert (
        main(
            [
                "eval",
                "ifeval",
                "--model",
                str(instruct),
                "--input-data",
                str(small_input),
                "--limit",
                "2",
                "--max-new-tokens",
                "4",
                "--device",
                "cpu",
                "--output",
                str(out),
                "--no-progress",
            ]
        )
        == 0
    )
    records = [json.loads(line) for line in (out / "responses.jsonl").read_text().splitlines()]
    assert [r["id"] for r in records] == ["1", "2"]
    assert all(
        r["meta"]["backend"] == "local" and r["meta"]["completion_tokens"] <= 4 for r in records
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["num_prompts"] == 2 and metrics["missing_responses"] == 0
    assert metrics["run"]["backend"]["device"] == "cpu"
