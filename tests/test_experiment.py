"""``codit experiment codit``: the interval maths by hand, and the whole chain on a random pair.

The chain test uses the random Llama pair of ``conftest.pair_dirs`` as the teacher and
minuscule settings everywhere, so it checks the plumbing (files, schema, resume, refusal of
changed settings), not the numbers.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from codit.errors import ConfigError
from codit.experiments.codit_mini import ARMS, METRICS, CoditExperimentConfig, quick_config
from codit.experiments.stats import mean_ci, paired_ci, t_quantile_975


def test_t_quantiles_agree_with_scipy_to_the_tables_precision():
    stats = pytest.importorskip("scipy.stats", reason="scipy is the independent reference")
    for df in [*range(1, 31), 31, 35, 40, 60, 120, 500]:
        assert t_quantile_975(df) == pytest.approx(stats.t.ppf(0.975, df), abs=1e-3), df
    with pytest.raises(ValueError):
        t_quantile_975(0)


def test_mean_ci_by_hand():
    # 1, 2, 3: mean 2, sd 1, half-width 4.303 / sqrt(3)
    ci = mean_ci([1.0, 2.0, 3.0])
    assert (ci.mean, ci.sd, ci.n) == (2.0, 1.0, 3)
    assert ci.low == pytest.approx(2 - 4.303 / math.sqrt(3))
    assert ci.high == pytest.approx(2 + 4.303 / math.sqrt(3))
    # 0.1, 0.3: sd = sqrt(0.02), half-width 12.706 * sqrt(0.02) / sqrt(2) = 1.2706
    ci = mean_ci([0.1, 0.3])
    assert ci.low == pytest.approx(0.2 - 1.2706) and ci.high == pytest.approx(0.2 + 1.2706)
    one = mean_ci([0.5])
    assert (one.mean, one.low, one.high, one.sd) == (0.5, None, None, None)
    assert mean_ci([0.4, 0.4]).to_dict() == {
        "mean": 0.4,
        "ci_low": 0.4,
        "ci_high": 0.4,
        "sd": 0.0,
        "n": 2,
    }
    diff = paired_ci([0.5, 0.7], [0.4, 0.4])  # differences 0.1 and 0.3
    assert diff.mean == pytest.approx(0.2) and diff.low == pytest.approx(ci.low)
    with pytest.raises(ValueError):
        paired_ci([0.1], [0.1, 0.2])


def _by_hand(values: list[float]) -> dict[str, float | int]:
    """Two seeds: mean, sample sd and t(0.975, 1) = 12.706 half-width, written out."""
    a, b = values
    mean = (a + b) / 2
    sd = abs(a - b) / math.sqrt(2)
    half = 12.706 * sd / math.sqrt(2)
    return {"mean": mean, "ci_low": mean - half, "ci_high": mean + half, "sd": sd, "n": 2}


def _stamps(out: Path) -> dict[str, int]:
    """Modification times of every model weight and record file under ``out``."""
    return {
        str(p.relative_to(out)): p.stat().st_mtime_ns
        for p in out.rglob("*")
        if p.suffix in (".safetensors", ".jsonl") and p.name != "prompts.jsonl"
    }


def test_config_reports_every_problem_and_quick_is_valid():
    with pytest.raises(ConfigError) as err:
        CoditExperimentConfig(
            prompts=0, seeds=0, student_hidden=30, student_heads=4, temperature=0.0
        )
    text = str(err.value)
    for flag in ("--prompts", "--seeds", "--student-hidden", "--temperature"):
        assert flag in text
    quick = quick_config(seeds=3)
    assert quick.seeds == 3 and quick.prompts < CoditExperimentConfig().prompts


def test_grid_flags_parse_and_name_their_problems():
    config = CoditExperimentConfig(alpha=("0.1,0.01", "0.001"), beta=(0.5, "1"))
    assert config.alpha == (0.1, 0.01, 0.001) and config.beta == (0.5, 1.0)
    assert config.grid[0] == (0.1, 0.5) and len(config.grid) == 6
    assert config.student_grid == config.grid  # every cell by default
    some = CoditExperimentConfig(alpha="0.1,0.01", students=("0.01:1,0.1:1",))
    assert some.student_grid == [(0.1, 1.0), (0.01, 1.0)]  # grid order
    assert some.students == ("0.1:1", "0.01:1")
    with pytest.raises(ConfigError) as err:
        CoditExperimentConfig(alpha="0.1,x,2", students=("0.5:1", "oops"))
    text = str(err.value)
    assert "'x'" in text and "--alpha must be in [0, 1], got 2" in text
    assert "0.5:1 is not a cell" in text and "'oops'" in text


def test_distinct_2_and_cell_names_by_hand():
    from codit.experiments.grid import cell_name, cell_tag, default_cell, distinct_n

    # "a b a b" has bigrams ab, ba, ab; "A B c" adds ab, bc: 3 distinct of 5
    assert distinct_n(["a b a b", "A B c"], 2) == pytest.approx(3 / 5)
    assert distinct_n(["one"], 2) == 0.0
    assert distinct_n(["x y z"], 1) == 1.0
    assert (cell_name(0.01, 1.0), cell_tag(0.001, 0.25)) == ("0.01:1", "codit-a0.001-b0.25")
    assert default_cell([(0.1, 1.0), (0.01, 1.0)]) == (0.01, 1.0)
    assert default_cell([(0.1, 0.5)]) == (0.1, 0.5)


def test_token_shift_by_hand():
    import torch

    from codit.experiments.token_shift import shift

    # p_post = (0.5, 0.25, 0.25), p_base = (0.25, 0.25, 0.5); alpha 0 keeps all, beta 1:
    # q ~ p_post / p_base = (2, 1, 0.5) -> (4/7, 2/7, 1/7); q - p = (1/14, 1/28, -3/28)
    post = torch.log(torch.tensor([[0.5, 0.25, 0.25]]))
    base = torch.log(torch.tensor([[0.25, 0.25, 0.5]]))
    out = shift(post, base, alpha=0.0, beta=1.0)
    assert out.tolist() == pytest.approx([1 / 14, 1 / 28, -3 / 28], abs=1e-6)
    # two rows add up; beta 0 and alpha 0 is direct decoding: no shift at all
    assert shift(post.repeat(2, 1), base.repeat(2, 1), 0.0, 1.0).tolist() == pytest.approx(
        [2 / 14, 2 / 28, -6 / 28], abs=1e-6
    )
    assert shift(post, base, 0.0, 0.0).abs().max().item() < 1e-7
    # alpha 0.6 drops the tokens below 0.6 * 0.5: q = (1, 0, 0)
    assert shift(post, base, 0.6, 1.0).tolist() == pytest.approx([0.5, -0.25, -0.25], abs=1e-6)


def test_help_exits_zero(capsys):
    from codit.cli.main import main

    with pytest.raises(SystemExit) as exit_:
        main(["experiment", "codit", "--help"])
    assert exit_.value.code == 0
    assert "--quick" in capsys.readouterr().out


def _heldout(path):
    from codit.tiny.conversations import instruction_data
    from codit.tiny.world import make_world

    _, heldout = instruction_data(make_world(0), 0, 4, 0)
    path.write_text("".join(json.dumps(e.ifeval()) + "\n" for e in heldout))
    return path


def test_whole_chain_on_a_random_pair(pair_dirs, tmp_path, capsys):
    pytest.importorskip("trl", reason="needs the train extra: pip install 'codit[train]'")
    from codit.cli.main import main

    instruct, base = pair_dirs
    out = tmp_path / "run"
    argv = [
        "experiment",
        "codit",
        "--no-progress",
        "--output",
        str(out),
        "--instruct",
        str(instruct),
        "--base",
        str(base),
        "--heldout",
        str(_heldout(tmp_path / "h.jsonl")),
        "--prompts",
        "4",
        "--seeds",
        "2",
        "--max-new-tokens",
        "6",
        "--batch-size",
        "4",
        "--device",
        "cpu",
        "--student-hidden",
        "16",
        "--student-layers",
        "1",
        "--student-heads",
        "2",
        "--student-vocab",
        "300",
        "--student-pages",
        "40",
        "--student-steps",
        "2",
        "--student-batch",
        "2",
        "--sft-epochs",
        "1",
        "--sft-batch",
        "4",
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "CoDIT - direct (paired by seed)" in printed

    for name in (
        "results.json",
        "results.md",
        "results.png",
        "experiment.json",
        "prompts.jsonl",
        "student-base/student.json",
        "teacher-eval/metrics.json",
    ):
        assert (out / name).is_file(), name
    assert (out / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    results = json.loads((out / "results.json").read_text())
    assert results["seeds"] == [0, 1] and results["metrics"] == list(METRICS)
    assert results["student"]["architecture"] == "GPTNeoXForCausalLM"
    assert results["heldout"]["prompts"] == 4
    files = {"direct": "direct", "codit": "codit-a0.01-b1"}  # the default cell's files
    for arm in ARMS:
        assert len(results["arms"][arm]["per_seed"]) == 2
        for seed in (0, 1):
            # every prompt once: answered, or in the errors file (a random teacher may find a
            # prompt longer than its 256-token context)
            stem = f"{files[arm]}-seed{seed}"
            ids = [
                json.loads(line)["id"]
                for name in (f"{stem}.jsonl", f"{stem}.errors.jsonl")
                if (out / "teacher" / name).is_file()
                for line in (out / "teacher" / name).read_text().splitlines()
            ]
            assert sorted(ids) == ["0", "1", "2", "3"]
            assert (out / "students" / stem / "model" / "config.json").is_file()
            assert len((out / "students" / stem / "heldout.jsonl").read_text().splitlines()) == 4
        for m in METRICS:
            stat = results["arms"][arm]["summary"][m]
            values = [row[m] for row in results["arms"][arm]["per_seed"]]
            assert 0.0 <= min(values) <= max(values) <= 1.0
            assert stat == pytest.approx(_by_hand(values))
        assert results["teacher_data"][arm]["summary"]["prompt_level_strict"]["n"] == 2
    for m in METRICS:
        # the interval of the per-seed differences (seed i against seed i), not of the arms
        rows = {arm: results["arms"][arm]["per_seed"] for arm in ARMS}
        assert [r["seed"] for r in rows["codit"]] == [r["seed"] for r in rows["direct"]]
        diffs = [c[m] - d[m] for c, d in zip(rows["codit"], rows["direct"], strict=True)]
        assert results["difference"][m] == pytest.approx(_by_hand(diffs))

    # A rerun finds every stage done and reproduces the numbers; other settings are refused.
    before = {m: results["arms"][arm]["summary"][m] for arm in ARMS for m in METRICS}
    stamps = _stamps(out)
    assert main(argv) == 0
    again = json.loads((out / "results.json").read_text())
    assert {m: again["arms"][arm]["summary"][m] for arm in ARMS for m in METRICS} == before
    assert len(again["runs"]) == 2
    assert _stamps(out) == stamps  # no model, teacher output or evaluation was redone
    assert main([*argv, "--temperature", "0.5"]) == ConfigError.exit_code
    assert "temperature" in capsys.readouterr().err

    # A grid grows by cells: a second alpha adds one cell's teacher data, and its students
    # only where asked; the default cell keeps its numbers.
    assert main([*argv, "--alpha", "0.01,0.5", "--students", "0.01:1"]) == 0
    grid = json.loads((out / "results.json").read_text())
    assert [(c["alpha"], c["beta"]) for c in grid["grid"]] == [(0.01, 1.0), (0.5, 1.0)]
    assert grid["grid"][1]["students"] is None and grid["grid"][1]["difference"] is None
    assert grid["grid"][1]["teacher_data"]["summary"]["distinct_2"]["n"] == 2
    assert (out / "teacher" / "codit-a0.5-b1-seed1.jsonl").is_file()
    assert not (out / "students" / "codit-a0.5-b1-seed0").exists()
    assert {m: grid["arms"][arm]["summary"][m] for arm in ARMS for m in METRICS} == before
    assert (out / "grid.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| 0.5 | 1 |" in (out / "results.md").read_text()
    shift = grid["token_shift"]
    assert shift["alpha"] == 0.01 and len(shift["boosted"]) == len(shift["suppressed"]) == 10
    assert shift["boosted"][0]["mean_shift"] >= 0 >= shift["suppressed"][0]["mean_shift"]
