"""``--ray``: generation on a local Ray instance with 2 CPU workers gives exactly the records of a
plain local run, resumes, survives a worker killed midway, serves ``eval ifeval --model``, and
without the extra fails with the install hint before any model loads.

One Ray instance serves the whole module (starting one costs seconds on 2 cores); ``generate``
joins a Ray instance its process already started instead of starting its own.
"""

from __future__ import annotations

import importlib.util
import json
import logging
from pathlib import Path

import pytest

from codit.cli.main import main

pytestmark = [
    pytest.mark.ray,
    # Ray's own deprecation notices, raised when it copies its data context
    pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data.context"),
]
needs_ray = pytest.mark.skipif(
    importlib.util.find_spec("ray") is None,
    reason="ray is not installed: pip install 'codit[ray]'",
)

PROMPTS = [
    "hello fox",
    "write three bullet points about apples",
    "the base model knows facts",
    "a small model answers",
]
N = 12


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


FLAGS = ("--max-new-tokens", "8", "--temperature", "0", "--batch-size", "2", "--device", "cpu")


def gen_args(pair_dirs: tuple[Path, Path], inp: Path, out: Path, *extra: str) -> list[str]:
    instruct, base = pair_dirs
    models = ["--instruct", str(instruct), "--base", str(base)]
    files = ["--input", str(inp), "--output", str(out)]
    return ["generate", *models, *files, *FLAGS, "--no-progress", *extra]


RAY = ("--ray", "--num-workers", "2")


@pytest.fixture(scope="module")
def local_ray():
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def local_run(pair_dirs, tmp_path_factory) -> tuple[Path, dict[str, dict]]:
    """(the prompts file, the records of a plain in-process run keyed by id)."""
    root = tmp_path_factory.mktemp("local")
    inp = root / "p.jsonl"
    inp.write_text(
        "".join(
            json.dumps({"id": f"q{i}", "prompt": f"{PROMPTS[i % 4]} {i}"}) + "\n" for i in range(N)
        )
    )
    out = root / "local.jsonl"
    assert main(gen_args(pair_dirs, inp, out)) == 0
    return inp, {r["id"]: r for r in read(out)}


@needs_ray
def test_ray_run_resumes_and_equals_a_local_run(local_ray, local_run, pair_dirs, tmp_path):
    inp, expected = local_run
    out = tmp_path / "ray.jsonl"
    # A driver interrupted after 5 records, the 6th torn mid-line; the rerun completes it.
    lines = [json.dumps(r) for r in list(expected.values())[:5]]
    out.write_text("\n".join(lines) + "\n" + lines[0][:20])
    assert main(gen_args(pair_dirs, inp, out, *RAY)) == 0
    records = read(out)
    ids = [r["id"] for r in records]
    assert sorted(ids) == sorted(expected) and len(ids) == len(set(ids))
    assert {r["id"]: r for r in records} == expected  # greedy: the same text, meta and messages
    for r in records:
        assert [m["role"] for m in r["messages"]] == ["user", "assistant"]
        assert r["meta"]["mode"] == "codit" and 1 <= r["meta"]["completion_tokens"] <= 8
    manifest = json.loads(out.with_suffix(".manifest.json").read_text())
    assert manifest["runs"][-1]["already_done"] == 5 and manifest["runs"][-1]["written"] == N - 5
    assert manifest["counts"]["records"] == N
    assert manifest["models"]["base"]["path"] == str(pair_dirs[1])
    assert manifest["config"]["distributed"]["num_workers"] == 2


def crash_once_after(key: str, marker: Path) -> type:
    """A ``PairWorker`` that exits on the spot, as a lost node would, once it has decoded ``key``.

    It touches ``marker`` first, so its restarted self goes on. Defined here, in a function, so
    that Ray ships the class to its workers by value: production code holds no test hook.
    """
    import os

    from codit.distributed.ray_generate import PairWorker

    class CrashOnce(PairWorker):
        def complete(self, conversations):
            done = super().complete(conversations)
            if any(c.key == key for c in done[1]) and not marker.exists():
                marker.touch()
                os._exit(1)  # no cleanup, no exception: the batch is done but never returned
            return done

    return CrashOnce


@needs_ray
def test_a_worker_killed_midway_is_replaced_and_every_id_is_written_once(
    local_ray, local_run, pair_dirs, tmp_path, monkeypatch
):
    import codit.distributed.ray_generate as ray_generate

    inp, expected = local_run
    marker = tmp_path / "crashed"
    monkeypatch.setattr(ray_generate, "PairWorker", crash_once_after("q4", marker))
    out = tmp_path / "ray.jsonl"
    assert main(gen_args(pair_dirs, inp, out, *RAY)) == 0
    assert marker.exists(), "the injected failure did not happen"
    ids = [r["id"] for r in read(out)]  # every line parses: nothing torn
    assert sorted(ids) == sorted(expected) and len(ids) == len(set(ids))
    assert {r["id"]: r for r in read(out)} == expected
    assert not out.with_suffix(".errors.jsonl").read_text()


@needs_ray
def test_prompts_reach_the_workers_in_bounded_tasks(local_ray, local_run, pair_dirs, monkeypatch):
    """The driver pulls prompts only as tasks leave: 2 workers x 1 task x 2 prompts at a time."""
    import codit.distributed.ray_generate as ray_generate
    from codit.decoding.config import DecodingConfig
    from codit.distributed.config import RayConfig
    from codit.generation.config import GenerateConfig

    monkeypatch.setattr(ray_generate, "BATCHES_PER_TASK", 1)  # a task = one batch of 2
    monkeypatch.setattr(ray_generate, "TASKS_PER_WORKER", 1)
    inp, expected = local_run
    config = GenerateConfig(
        instruct=str(pair_dirs[0]),
        base=str(pair_dirs[1]),
        input=str(inp),
        output="unused.jsonl",
        decoding=DecodingConfig(max_new_tokens=8, temperature=0.0),
        batch_size=2,
        device="cpu",
        distributed=RayConfig(ray=True, num_workers=2),
    )
    pulled: list[str] = []

    def conversations():
        for key, record in expected.items():
            pulled.append(key)
            yield key, record["messages"][:1]

    models: list[dict] = []
    in_flight = []
    texts = {}
    for done in ray_generate.ray_completions(config, conversations(), N, models.append):
        in_flight.append(len(pulled) - len(texts))
        texts[done.key] = done.text
    assert in_flight[0] == 4  # 2 tasks of 2 out when the first one comes back
    assert max(in_flight) <= 4 and len(pulled) == N
    assert texts == {key: r["messages"][-1]["content"] for key, r in expected.items()}
    assert len(models) == 1 and models[0]["base"]["path"] == str(pair_dirs[1])


@needs_ray
def test_eval_ifeval_generates_on_ray_like_the_local_backend(local_ray, pair_dirs, tmp_path):
    prompts = [
        {"key": k, "prompt": p, "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]}
        for k, p in ((1, "Write without commas."), (2, "hello fox"), (3, "a small model answers"))
    ]
    data = tmp_path / "input.jsonl"
    data.write_text("".join(json.dumps(p) + "\n" for p in prompts))
    model = ["--model", str(pair_dirs[0]), "--max-new-tokens", "6", "--device", "cpu"]
    args = ["eval", "ifeval", *model, "--input-data", str(data), "--no-progress"]
    assert main([*args, "--output", str(tmp_path / "local")]) == 0
    assert main([*args, "--output", str(tmp_path / "ray"), *RAY]) == 0
    local = {r["id"]: r["response"] for r in read(tmp_path / "local" / "responses.jsonl")}
    on_ray = {
        r["id"]: r["messages"][-1]["content"]
        for r in read(tmp_path / "ray" / "responses.ray.jsonl")
    }
    assert on_ray == local and set(local) == {"1", "2", "3"}
    metrics = json.loads((tmp_path / "ray" / "metrics.json").read_text())
    assert metrics["missing_responses"] == 0
    assert metrics == {
        **json.loads((tmp_path / "local" / "metrics.json").read_text()),
        "run": metrics["run"],
    }


def test_without_the_extra_ray_fails_with_the_install_hint_before_any_model(
    tmp_path, monkeypatch, capsys
):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a, **k: None if name == "ray" else real_find_spec(name, *a, **k),
    )
    inp = tmp_path / "p.jsonl"
    inp.write_text('{"prompt": "hello"}\n')
    no_model = (tmp_path / "no-such-model", tmp_path / "no-such-base")  # never reached
    assert main(gen_args(no_model, inp, tmp_path / "o.jsonl", *RAY)) == 6
    err = capsys.readouterr().err
    assert "pip install 'codit[ray]'" in err and "Traceback" not in err
    # one sentence from codit (a Ray cluster of an earlier test may still log while it stops)
    assert len([line for line in err.splitlines() if line.startswith("codit:")]) == 1


@pytest.mark.parametrize(
    ("flags", "needle"),
    [
        (("--num-workers", "2"), "--num-workers: only for a run on Ray; add --ray"),
        (("--ray", "--num-workers", "0"), "--num-workers must be >= 1"),
        (("--ray", "--gpus-per-worker", "1"), "--gpus-per-worker needs --device auto or cuda"),
        (
            ("--ray", "--gpus-per-worker", "1", "--device", "auto", "--base-device", "cuda:1"),
            "--base-device cuda:1 needs --gpus-per-worker >= 2",
        ),
    ],
)
def test_bad_ray_flags_give_one_sentence_and_exit_code_2(
    pair_dirs, tmp_path, capsys, flags, needle
):
    inp = tmp_path / "p.jsonl"
    inp.write_text('{"prompt": "hello"}\n')
    # a flag given twice (--device) takes its last value
    assert main(gen_args(pair_dirs, inp, tmp_path / "o.jsonl", *flags)) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err


@needs_ray
def test_an_unreachable_cluster_fails_in_seconds():
    from codit.distributed.ray_generate import check_reachable
    from codit.errors import BackendError

    with pytest.raises(BackendError, match="no Ray cluster answers at 127.0.0.1:1"):
        check_reachable("127.0.0.1:1", timeout=5)


def test_ray_flags_are_in_the_help_of_both_commands(capsys):
    for argv in (["generate"], ["eval", "ifeval"]):
        with pytest.raises(SystemExit) as exit_info:
            main([*argv, "--help"])
        assert exit_info.value.code == 0
        help_text = capsys.readouterr().out
        for flag in (
            "--ray",
            "--ray-address",
            "--num-workers",
            "--gpus-per-worker",
            "--cpus-per-worker",
        ):
            assert flag in help_text, (argv, flag)
