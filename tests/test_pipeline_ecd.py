"""ECD end to end against a real OpenAI-compatible HTTP server with scripted replies
(``scripted_llm.ecd_script``): verifiable pairs checked by code, free-form ones by the judge,
faults, a server that dies, resumption, the CLI and the local backend; outputs are checked with
``datasets`` and TRL's data utilities."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codit.backends.spec import BackendConfig
from codit.errors import BackendError, ConfigError
from codit.evaluation.checks import follows
from codit.pipelines.ecd import EcdConfig, run_ecd
from fakeserver import FakeServer, Reply
from scripted_llm import between, ecd_reply, ecd_script, faulty, prompt_kind

SEEDS = [
    "Tell me about the history of tea",
    "Describe how rain forms in clouds",
    "Explain why the sky looks blue",
    "Give advice on learning to cook",
]
# The types the scripted responder knows how to follow.
OBEYED = ("punctuation:no_comma", "detectable_content:postscript", "change_case:english_lowercase")


@pytest.fixture
def server():
    with FakeServer(ecd_script) as s:
        yield s


def make_config(folder: Path, url: str, **kw) -> EcdConfig:
    folder.mkdir(parents=True, exist_ok=True)
    seeds = folder / "seeds.jsonl"
    seeds.write_text(
        "".join(json.dumps({"id": f"s{i}", "prompt": t}) + "\n" for i, t in enumerate(SEEDS))
    )
    settings = {
        "evolver": f"openai:evolver@{url}",
        "responder": f"openai:responder@{url}",
        "seeds": str(seeds),
        "output": str(folder / "out" / "ecd.jsonl"),
        "rounds": 3,
        "max_new_tokens": 64,
        "backend": BackendConfig(retry_delay=0.01, max_retries=2, concurrency=4),
    } | kw
    return EcdConfig(**settings)


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def side(config: EcdConfig, name: str) -> Path:
    out = Path(str(config.output))
    return out.with_name(f"{out.stem}.{name}.jsonl")


def pairs_essence(config: EcdConfig) -> dict[str, tuple]:
    return {
        r["id"]: (r["prompt"], r["chosen"], r["rejected"], r["meta"]["operation"])
        for r in records(Path(str(config.output)))
    }


def request_key(body: dict) -> str:
    return json.dumps(
        {k: body.get(k) for k in ("model", "messages", "seed", "temperature")}, sort_keys=True
    )


def assert_trl(path: Path, tokenizer, keys: tuple[str, ...]) -> None:
    """The file loads with ``datasets`` and every row is TRL conversational data."""
    from datasets import load_dataset

    trl = pytest.importorskip("trl.data_utils")
    rows = load_dataset("json", data_files=str(path), split="train")
    assert len(rows) == len(records(path)) > 0 and set(keys) <= set(rows.column_names)
    for row in rows:
        assert trl.is_conversational(row)
        templated = trl.maybe_apply_chat_template(row, tokenizer)
        if "chosen" in keys:
            assert row["prompt"][0]["content"] in templated["prompt"]
            assert templated["chosen"].startswith(row["chosen"][0]["content"])
            assert templated["rejected"].startswith(row["rejected"][0]["content"])
        else:
            assert row["messages"][1]["content"] in templated["text"]


def test_verifiable_pairs_are_checked_by_code(
    server: FakeServer, tmp_path: Path, tokenizer
) -> None:
    config = make_config(tmp_path, server.url, verifiable_share=1.0, constraint_types=OBEYED)
    report = run_ecd(config)
    pairs = records(Path(str(config.output)))
    verifiable = [p for p in pairs if p["meta"]["operation"] == "verifiable"]
    assert verifiable and report["records"]["pairs_verifiable"] == len(verifiable)
    for pair in verifiable:
        meta = pair["meta"]
        chosen, rejected = pair["chosen"][0]["content"], pair["rejected"][0]["content"]
        # chosen meets every constraint of the evolved instruction; rejected breaks the new one.
        assert meta["constraints"] and all(
            follows(c["id"], chosen, c["kwargs"]) for c in meta["constraints"]
        )
        assert meta["added"] == meta["constraints"][-1] and meta["added"]["id"] in OBEYED
        assert not follows(meta["added"]["id"], rejected, meta["added"]["kwargs"])
        assert meta["verification"]["rejected_checked_by"] == "code"
        assert meta["verification"]["chosen_constraints"] == {
            c["id"]: True for c in meta["constraints"]
        }
        assert pair["prompt"][0]["content"] == meta["evolution"][-1]
        assert meta["added"]["text"] in pair["prompt"][0]["content"]
    # After the postscript, lowercase conflicts and commas are gone: the round falls back to in-depth.
    fallbacks = [s for c in records(side(config, "chains")) for s in c["rounds"] if "fallback" in s]
    assert fallbacks and all(s["operation"] != "verifiable" for s in fallbacks)
    assert report["operations"]["verifiable"]["pair"] == len(verifiable)
    assert sum(report["constraints"][k].get("pair", 0) for k in report["constraints"]) == len(
        verifiable
    )

    sft = records(side(config, "sft"))
    assert report["records"]["sft"] == len(sft) and len({r["id"] for r in sft}) == len(sft)
    by_id = {r["id"]: r for r in sft}
    for pair in pairs:  # every pair's chosen side is also in the SFT view
        assert by_id[pair["id"]]["messages"][1]["content"] == pair["chosen"][0]["content"]
    assert_trl(Path(str(config.output)), tokenizer, ("id", "prompt", "chosen", "rejected", "meta"))
    assert_trl(side(config, "sft"), tokenizer, ("id", "messages", "meta"))
    # ... and codit's own trainers read both files.
    from codit.training.data import load_preferences, load_sft

    assert len(load_preferences(Path(str(config.output)))) == len(pairs)
    assert len(load_sft(side(config, "sft"))) == len(sft)

    # A rerun asks nothing and writes nothing twice.
    server.requests.clear()
    again = run_ecd(config)
    assert server.requests == [] and again["records"] == report["records"]
    assert again["chains"]["already_done"] == 4 and len(records(Path(str(config.output)))) == len(
        pairs
    )


def test_chosen_breaking_a_constraint_is_dropped_and_ends_the_chain(
    server: FakeServer, tmp_path: Path
) -> None:
    def script(body: dict, n: int) -> Reply:  # a responder that ignores every requirement
        if prompt_kind(body) == "answer":
            return Reply(text="Plain words, with commas, and nothing more to say here.")
        return ecd_script(body, n)

    server.script = script
    config = make_config(tmp_path, server.url, verifiable_share=1.0, constraint_types=OBEYED[1:])
    report = run_ecd(config)
    dropped = records(side(config, "dropped"))
    assert report["records"]["pairs"] == 0 and len(dropped) == 4
    for record in dropped:
        assert record["outcome"] == "chosen_breaks_constraint" and record["round"] == 1
        assert record["reason"] == f"chosen breaks {record['constraint']['id']}"
        assert record["checks"]["chosen_constraints"] == {record["constraint"]["id"]: False}
    chains = records(side(config, "chains"))
    assert all(
        c["stopped"] == "chosen_breaks_constraint in round 1" and len(c["rounds"]) == 2
        for c in chains
    )
    assert report["records"]["sft"] == 4  # only the seeds' own answers
    assert report["rounds"] == {"0": {"sft": 4}, "1": {"chosen_breaks_constraint": 4}}


def test_free_form_pairs_are_checked_by_the_judge(server: FakeServer, tmp_path: Path) -> None:
    config = make_config(
        tmp_path, server.url, verifiable_share=0.0, operations=("constraints", "deepen"), rounds=2
    )
    report = run_ecd(config)
    pairs = records(Path(str(config.output)))
    # Round 1 adds "mention a fruit": the old answer misses it (a pair); round 2 asks for it again,
    # and the old answer already has an apple, so the judge finds nothing new: dropped.
    # (The scripted responder names the fruit once per request, so the answers differ.)
    assert {p["id"].split(":")[1] for p in pairs} == {"1"} and len(pairs) == 4
    for pair in pairs:
        assert pair["meta"]["added"] == {"text": "mention a fruit"}
        assert pair["meta"]["verification"] == {
            "chosen_constraints": {},
            "chosen_judge": True,
            "rejected_meets_new": False,
            "rejected_checked_by": "judge",
        }
        assert (
            "apple" in pair["chosen"][0]["content"]
            and "apple" not in pair["rejected"][0]["content"]
        )
    assert report["records"]["dropped_by_outcome"] == {"rejected_meets_new": 4}
    assert report["rounds"]["2"] == {"rejected_meets_new": 4}
    judged = [
        b for b in server.requests if prompt_kind(b) in ("check_follows", "check_requirement")
    ]
    assert judged and all(b["model"] == "evolver" and b["temperature"] == 0.0 for b in judged)


def test_an_unchanged_answer_is_no_pair(server: FakeServer, tmp_path: Path) -> None:
    def script(body: dict, n: int) -> Reply:  # a responder that always says the same thing
        if prompt_kind(body) == "answer":
            return Reply(text="Plain words about the topic and nothing more to say.")
        return ecd_script(body, n)

    server.script = script
    config = make_config(
        tmp_path, server.url, verifiable_share=0.0, operations=("deepen",), rounds=1
    )
    report = run_ecd(config)
    assert report["records"]["pairs"] == 0
    assert report["records"]["dropped_by_outcome"] == {"rejected_same_as_chosen": 4}
    assert report["records"]["sft"] == 8  # both stages still pass the judge


def test_breadth_rounds_make_sft_records_but_no_pairs(server: FakeServer, tmp_path: Path) -> None:
    config = make_config(
        tmp_path,
        server.url,
        verifiable_share=0.0,
        operations=("breadth",),
        rounds=2,
        judge_chosen=False,
    )
    report = run_ecd(config)
    assert report["records"]["pairs"] == 0 and report["records"]["sft"] == 4 * 3
    assert report["rounds"]["1"] == {"sft_only_breadth": 4} and report["rounds"]["2"] == {
        "sft_only_breadth": 4
    }
    assert not any(prompt_kind(b).startswith("check") for b in server.requests)


def test_an_evolver_that_never_states_the_constraint_is_overruled_by_code(
    server: FakeServer, tmp_path: Path
) -> None:
    def script(body: dict, n: int) -> Reply:
        if prompt_kind(body) == "evolve_verifiable":
            return Reply(text='{"instruction": "Tell me something else entirely, please."}')
        return ecd_script(body, n)

    server.script = script
    config = make_config(
        tmp_path, server.url, verifiable_share=1.0, constraint_types=OBEYED[1:2], rounds=1
    )
    report = run_ecd(config)
    pairs = records(Path(str(config.output)))
    assert len(pairs) == 4 and report["unparsable_replies"] == 4 * 3  # first ask and two re-asks
    for pair in pairs:
        assert pair["meta"]["stated_by"] == "code"
        assert (
            pair["prompt"][0]["content"]
            == f"{pair['meta']['previous_instruction']}\n\n{pair['meta']['added']['text']}"
        )


def test_faults_429_500_malformed_empty_and_garbage_change_nothing(
    server: FakeServer, tmp_path: Path
) -> None:
    clean = make_config(tmp_path / "clean", server.url)
    run_ecd(clean)
    server.requests.clear()  # the faults are numbered from here
    server.script = faulty(
        ecd_script,
        http_faults={
            0: Reply(status=429, headers={"Retry-After": "0"}),
            3: Reply(status=500),
            7: Reply(body=b"<html>502 Bad Gateway</html>"),
            20: Reply(status=502),
        },
        garbage=(
            "evolve_depth",
            "evolve_breadth",
            "evolve_verifiable",
            "check_follows",
            "check_requirement",
        ),
        empty=("answer",),
    )
    config = make_config(tmp_path / "faulty", server.url)
    report = run_ecd(config)
    assert pairs_essence(config) == pairs_essence(clean) and pairs_essence(config)
    assert records(side(config, "sft")) == records(side(clean, "sft"))
    assert report["unparsable_replies"] > 0 and report["records"]["errors"] == 0
    cost = report["cost"]  # the judge shares the evolver's backend, and its counters
    assert cost["judge"]["backend"] == cost["evolver"]["backend"]
    assert cost["responder"]["backend"]["retries"] + cost["evolver"]["backend"]["retries"] == 4


def test_server_dying_midway_then_rerun_completes_from_the_cache(tmp_path: Path) -> None:
    with FakeServer(ecd_script) as reference_server:
        reference = make_config(tmp_path / "reference", reference_server.url, chunk_size=2)
        run_ecd(reference)

    with FakeServer() as dying:

        def script(body: dict, n: int) -> Reply:
            if n < 30:
                return ecd_script(body, n)
            dying.stop_soon()
            return Reply(drop=True)

        dying.script = script
        config = make_config(tmp_path / "run", dying.url, chunk_size=2)
        with pytest.raises(BackendError, match="cannot reach"):
            run_ecd(config)
    assert not json.loads(Path(str(config.output)).with_name("ecd.report.json").read_text())[
        "complete"
    ]
    answered = {request_key(b) for b in dying.requests[:30]}

    with FakeServer(ecd_script) as healthy:
        report = run_ecd(make_config(tmp_path / "run", healthy.url, chunk_size=2))
    assert report["complete"] and report["chains"]["finished"] == 4
    assert not {request_key(b) for b in healthy.requests} & answered
    assert pairs_essence(config) == pairs_essence(reference)
    for name in ("sft", "chains", "dropped"):
        ids = [r["id"] for r in records(side(config, name))]
        assert len(ids) == len(set(ids)) and set(ids) == {
            r["id"] for r in records(side(reference, name))
        }


def test_config_errors_are_collected() -> None:
    with pytest.raises(ConfigError) as info:
        EcdConfig(
            seeds="s.jsonl",
            evolver="openai:e",
            output="o.jsonl",
            operations=("deepen,widen",),
            verifiable_share=2.0,
            constraint_types=("keywords:nope",),
            judge="bad",
        )
    message = str(info.value)
    for part in (
        "--responder is required",
        "--operations",
        "widen",
        "--verifiable-share must be in [0, 1], got 2",
        "--constraint-types",
        "--judge",
    ):
        assert part in message


def test_cli_help_run_and_errors(
    server: FakeServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from codit.cli.main import main

    with pytest.raises(SystemExit) as exited:
        main(["ecd", "--help"])
    assert exited.value.code == 0 and "--verifiable-share" in capsys.readouterr().out

    config = make_config(tmp_path, server.url)
    out = tmp_path / "cli" / "pairs.jsonl"
    argv = [
        "ecd",
        "--seeds",
        str(config.seeds),
        "--evolver",
        f"openai:evolver@{server.url}",
        "--responder",
        f"openai:responder@{server.url}",
        "--judge",
        f"openai:judge@{server.url}",
        "--rounds",
        "2",
        "--operations",
        "constraints,breadth",
        "--output",
        str(out),
        "--retry-delay",
        "0.01",
        "--no-progress",
    ]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "pairs (" in err and "SFT records" in err and "codit: judge (openai:judge):" in err
    pairs = records(out)
    assert pairs and all(p["meta"]["models"]["judge"] == "openai:judge" for p in pairs)
    assert main(["ecd", "--seeds", "x.jsonl", "--rounds", "0"]) == 2
    assert "--rounds must be >= 1, got 0" in capsys.readouterr().err


def test_local_responder_through_codits_engine(
    server: FakeServer, tmp_path: Path, pair_dirs
) -> None:
    instruct, _ = pair_dirs
    config = make_config(
        tmp_path,
        server.url,
        responder=f"local:{instruct}",
        rounds=2,
        max_new_tokens=8,
        parse_retries=0,
        backend=BackendConfig(device="cpu", retry_delay=0.01),
    )
    report = run_ecd(config)
    assert report["complete"] and report["chains"]["finished"] == 4
    assert (
        report["cost"]["responder"]["model"] == f"local:{instruct}"
        and report["cost"]["responder"]["calls"] > 0
    )
    # Random weights write nonsense: whatever survives the checks is well formed, the rest counted.
    done = report["records"]["sft"] + report["records"]["dropped"] + report["records"]["errors"]
    assert done >= 4
    for pair in records(Path(str(config.output))):
        assert pair["chosen"][0]["content"] and pair["rejected"][0]["content"]


def _tiny_built() -> bool:
    from codit.models.loading import TINY_MODELS_DIR

    return (TINY_MODELS_DIR / "tiny-instruct" / "config.json").exists()


@pytest.mark.skipif(
    not _tiny_built(),
    reason="the built-in tiny pair is not built (codit tiny build), so local:tiny-instruct cannot run",
)
def test_builtin_tiny_instruct_as_responder(server: FakeServer, tmp_path: Path, tokenizer) -> None:
    config = make_config(
        tmp_path,
        server.url,
        responder="local:tiny-instruct",
        rounds=2,
        max_new_tokens=48,
        verifiable_share=1.0,
        backend=BackendConfig(device="cpu", retry_delay=0.01),
    )
    report = run_ecd(config)
    assert report["complete"] and report["cost"]["responder"]["calls"] > 0
    for pair in records(Path(str(config.output))):
        meta = pair["meta"]
        assert all(
            follows(c["id"], pair["chosen"][0]["content"], c["kwargs"]) for c in meta["constraints"]
        )


def test_scripted_replies_are_sane() -> None:
    """The fake evolver really adds what it is asked to (a guard on the test double itself)."""
    body = {
        "model": "evolver",
        "messages": [
            {
                "role": "user",
                "content": (
                    "You add a checkable requirement to an instruction. x\n\nInstruction:\nSay hi\n\n"
                    "Requirement:\nDo not use any commas in the response.\n\nKeep it."
                ),
            }
        ],
    }
    assert (
        json.loads(ecd_reply(body))["instruction"]
        == "Say hi Do not use any commas in the response."
    )


def test_default_operations_are_the_papers_families(server: FakeServer, tmp_path: Path) -> None:
    from codit.pipelines.ecd_steps import ECD_FAMILIES, EVOL_INSTRUCT

    config = make_config(tmp_path, server.url)
    assert config.operations == ("content", "style", "format", "reasoning", "breadth")
    assert config.verifiable_rounds == 0.0
    report = run_ecd(config)
    evolve = [b for b in server.requests if prompt_kind(b).startswith("evolve")]
    assert evolve and not [b for b in evolve if prompt_kind(b) == "evolve_verifiable"]
    methods = {
        between(b["messages"][-1]["content"], "How to make it harder: ", "\n")
        for b in evolve
        if prompt_kind(b) == "evolve_depth"
    }
    assert methods and methods <= set(ECD_FAMILIES.values())
    assert set(report["operations"]) - {"seed"} <= set(config.operations)
    # the named options: Evol-Instruct's set and codit's verifiable operation
    both = make_config(tmp_path / "b", server.url, operations=("evol-instruct,verifiable",))
    assert both.operations == (*EVOL_INSTRUCT, "breadth", "verifiable")
    assert both.verifiable_rounds == pytest.approx(1 / 7)
    share = make_config(tmp_path / "c", server.url, operations=("ecd",), verifiable_share=0.5)
    assert share.verifiable_rounds == 0.5 and "verifiable" not in share.operations
    with pytest.raises(ConfigError, match="another operation"):
        make_config(tmp_path / "d", server.url, operations=("verifiable",), verifiable_share=0.5)
    assert (
        make_config(tmp_path / "e", server.url, operations=("verifiable",)).verifiable_rounds == 1
    )
