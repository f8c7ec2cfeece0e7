"""``codit experiment coin``: the toy tasks and the summary by hand, the whole chain on tiny-instruct.

The chain test uses minuscule settings, so it checks the plumbing (files, schema, the two arms
really differing, resume, refusal of changed settings), not the numbers.
"""

from __future__ import annotations

import json
import math
import random

import pytest

from codit.errors import ConfigError
from codit.experiments.coin_mini import ARMS, CoinExperimentConfig, quick_config, summarize
from codit.experiments.coin_tasks import (
    LEVELS,
    TASKS,
    draw_instances,
    eval_instruction,
    is_correct,
    paraphrase,
    predicted_label,
)
from codit.tiny.world import COLORS, SIZES, make_world

WORLD = make_world(0)


def test_every_task_has_four_training_and_six_test_wordings_all_distinct():
    assert list(TASKS) == ["size", "warm", "fly", "water", "fur"]
    every = []
    for task in TASKS.values():
        assert len(task.train) == 4 and len(task.test) == 6 and len(task.reworded) == 6, task.name
        every += [*task.train, *task.test, *task.reworded]
    assert len(set(every)) == len(every)  # unseen means unseen, and no wording serves two tasks


def test_the_label_judges_the_tasks_part_of_the_sentence_and_is_balanced():
    pools = {"size": set(SIZES), "color": set(COLORS), "kind": {c.kind for c in WORLD.creatures}}
    for name, task in TASKS.items():
        instances = draw_instances(WORLD, task, 200, 0)
        for instance in instances:
            words = set(instance.text.rstrip(".").replace(",", "").split())
            (value,) = words & pools[task.slot]
            assert instance.label == task.answers[0 if value in task.positive else 1], instance
            assert instance.key == f"{name}/{instance.text}"
        share = sum(i.label == task.answers[0] for i in instances) / len(instances)
        assert 0.4 < share < 0.6, (name, share)


def test_draws_are_distinct_seeded_and_respect_exclusions():
    task = TASKS["fly"]
    first = draw_instances(WORLD, task, 40, "test")
    assert first == draw_instances(WORLD, task, 40, "test")
    assert len({i.key for i in first}) == 40
    train = draw_instances(WORLD, task, 200, "train/0", exclude={i.key for i in first})
    assert not {i.key for i in train} & {i.key for i in first}
    small = make_world(0, n_places=1, n_creatures=1, n_things=1)  # 12 x 4 x 12 x 3 = 1728 sentences
    with pytest.raises(ValueError, match="fewer than"):
        draw_instances(small, TASKS["size"], 1800, 0)


def test_eval_wordings_are_fixed_and_perturbed():
    for task in TASKS.values():
        for index in range(6):
            assert eval_instruction(task, index, "clean") == task.test[index]
            assert eval_instruction(task, index, "semantic") == task.reworded[index]
            for level in ("char", "word", "sentence"):
                text = eval_instruction(task, index, level)
                assert text != task.test[index] and text == eval_instruction(task, index, level)


def test_training_paraphrases_cover_all_levels():
    task, rng = TASKS["water"], random.Random(0)
    seen = {}
    for _ in range(200):
        text, level = paraphrase(task, 1, rng)
        assert text != task.train[1]
        seen[level] = text
    assert set(seen) == set(LEVELS) - {"clean"}
    assert seen["semantic"] in task.train  # another training wording of the same task


def test_exact_match_on_the_first_word():
    assert predicted_label("Yes.") == "yes" and is_correct("Yes. It is.", "yes")
    assert predicted_label("  \n") == "" and not is_correct("", "no")
    assert not is_correct("no", "yes") and is_correct("fox<|end|>", "fox")
    assert is_correct("Big.", "big")
    assert not is_correct("foxes", "fox")


def test_summarize_by_hand():
    hits = {
        "a": {level: [[True, False]] * 3 + [[True, True]] * 3 for level in LEVELS},
        "b": {level: [[False, False]] * 6 for level in LEVELS},
    }
    hits["b"]["char"] = [[True, True]] * 6
    metrics = summarize(hits)
    # task a: accuracies 0.5 x3 and 1.0 x3 -> mean 0.75, population sd 0.25; task b: 0 (or 1), sd 0
    assert metrics["tasks"]["a"]["clean"] == {
        "accuracies": [0.5] * 3 + [1.0] * 3,
        "mean": 0.75,
        "spread": 0.25,
    }
    assert metrics["levels"]["clean"] == {"mean": 0.375, "spread": 0.125}
    assert metrics["levels"]["char"] == {"mean": 0.875, "spread": 0.125}
    assert metrics["levels"]["perturbed"]["mean"] == pytest.approx((0.875 + 3 * 0.375) / 4)


def test_config_reports_every_problem_and_quick_is_valid():
    with pytest.raises(ConfigError) as err:
        CoinExperimentConfig(train_per_task=0, batch_size=1, tasks="size,nope", lr=2.0)
    text = str(err.value)
    for flag in ("--train-per-task", "--batch-size", "--tasks", "--lr"):
        assert flag in text
    assert quick_config(seeds=3).seeds == 3


def test_help_exits_zero(capsys):
    from codit.cli.main import main

    with pytest.raises(SystemExit) as exit_:
        main(["experiment", "coin", "--help"])
    assert exit_.value.code == 0
    assert "--train-per-task" in capsys.readouterr().out


def test_whole_chain_on_tiny_instruct(tmp_path, capsys):
    pytest.importorskip("trl", reason="needs the train extra: pip install 'codit[train]'")
    import torch
    from safetensors.torch import load_file

    from codit.cli.main import main

    out = tmp_path / "run"
    argv = [
        "experiment",
        "coin",
        "--no-progress",
        "--output",
        str(out),
        "--tasks",
        "size,fly",
        "--train-per-task",
        "8",
        "--test-per-task",
        "2",
        "--seeds",
        "2",
        "--epochs",
        "1",
        "--batch-size",
        "4",
        "--device",
        "cpu",
    ]
    assert main(argv) == 0
    assert "CoIN - baseline (paired by seed)" in capsys.readouterr().out
    for name in (
        "results.json",
        "results.md",
        "results.png",
        "experiment.json",
        "test.jsonl",
        "before/metrics.json",
        "data/pairs-seed1.jsonl",
    ):
        assert (out / name).is_file(), name
    assert (out / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    pairs = [
        json.loads(line) for line in (out / "data" / "pairs-seed0.jsonl").read_text().splitlines()
    ]
    assert len(pairs) == 16 and {p["meta"]["task"] for p in pairs} == {"size", "fly"}
    test_keys = {json.loads(line)["key"] for line in (out / "test.jsonl").read_text().splitlines()}
    assert not test_keys & {p["meta"]["key"] for p in pairs}
    answers = (out / "models" / "coin-seed0" / "answers.jsonl").read_text().splitlines()
    assert len(answers) == 2 * 2 * 6 * len(LEVELS)  # tasks x instances x wordings x levels

    # Same data, order and seed: the two arms differ only by the contrastive term.
    weights = {
        arm: load_file(out / "models" / f"{arm}-seed0" / "model" / "model.safetensors")
        for arm in ARMS
    }
    assert any(not torch.equal(weights["coin"][k], weights["baseline"][k]) for k in weights["coin"])
    manifests = {
        arm: json.loads(
            (out / "models" / f"{arm}-seed0" / "model" / "codit_train_config.json").read_text()
        )
        for arm in ARMS
    }
    assert manifests["coin"]["config"]["contrastive"] is True
    assert manifests["baseline"]["config"]["contrastive"] is False

    results = json.loads((out / "results.json").read_text())
    assert results["seeds"] == [0, 1]
    for arm in ARMS:
        summary = results["arms"][arm]["summary"]
        for level in results["levels"]:
            values = [row[f"{level}_mean"] for row in results["arms"][arm]["per_seed"]]
            assert summary[f"{level}_mean"]["mean"] == pytest.approx(sum(values) / 2)
            assert 0.0 <= min(values) <= max(values) <= 1.0
    # the interval of the per-seed differences, written out for two seeds (t(0.975, 1) = 12.706)
    rows = {arm: results["arms"][arm]["per_seed"] for arm in ARMS}
    diffs = [
        c["perturbed_mean"] - b["perturbed_mean"]
        for c, b in zip(rows["coin"], rows["baseline"], strict=True)
    ]
    mean, sd = sum(diffs) / 2, abs(diffs[0] - diffs[1]) / math.sqrt(2)
    half = 12.706 * sd / math.sqrt(2)
    assert results["difference"]["perturbed_mean"] == pytest.approx(
        {"mean": mean, "ci_low": mean - half, "ci_high": mean + half, "sd": sd, "n": 2}
    )

    # A rerun finds every stage done and reproduces the numbers; other settings are refused.
    stamps = {
        str(p.relative_to(out)): p.stat().st_mtime_ns
        for p in out.rglob("*")
        if p.suffix in (".safetensors", ".jsonl")
    }
    assert main(argv) == 0
    again = json.loads((out / "results.json").read_text())
    assert again["arms"] == results["arms"] and len(again["runs"]) == 2
    assert {
        str(p.relative_to(out)): p.stat().st_mtime_ns
        for p in out.rglob("*")
        if p.suffix in (".safetensors", ".jsonl")
    } == stamps  # nothing was trained, generated or scored again
    assert main([*argv, "--lr", "0.002"]) == ConfigError.exit_code
    assert "lr" in capsys.readouterr().err
