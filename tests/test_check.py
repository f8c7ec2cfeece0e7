"""``codit check``: the pair report from configs and tokenizers, and one sentence per problem."""

from __future__ import annotations

import json
import shutil

import pytest

from codit.cli.main import main
from codit.models import doctor
from codit.models.doctor import CheckConfig, diagnose


def test_report_of_a_good_pair_loads_no_weights(pair_dirs, monkeypatch, tmp_path, capsys):
    import transformers

    def no_weights(*args, **kwargs):
        raise AssertionError("codit check loaded weights")

    # every model class loads through PreTrainedModel.from_pretrained, whichever reads the weights
    monkeypatch.setattr(transformers.PreTrainedModel, "from_pretrained", no_weights)
    instruct, base = pair_dirs
    config = CheckConfig(instruct=str(instruct), base=str(base), device="cpu", max_new_tokens=100)
    report = diagnose(config)
    assert report.problems == [] and report.notes == []
    from tiny_models import make_model, make_tokenizer

    tokenizer = make_tokenizer()
    expected = sum(p.numel() for p in make_model(tokenizer, 1).parameters())
    assert report.instruct.parameters == report.base.parameters == expected
    assert report.instruct.stored_dtypes == ["float32"]
    assert report.contrasted == len(tokenizer)
    assert report.instruct.stop_ids == [tokenizer.eos_token_id]
    assert (
        report.sample["plain"]["text"]
        == "<|user|>\nWrite a haiku about the sea.<|end|>\n<|assistant|>\n"
    )
    assert report.sample["system"]["tokens"] > report.sample["plain"]["tokens"]
    assert report.system_turn["placement"] == "own turn"
    # weights 2 x params x 4 bytes, KV cache 2 x 2 layers x 2 kv heads x 8 dims x 4 bytes a token
    (need,) = report.memory
    assert need["weights"] == 2 * expected * 4
    tokens = report.sample["system"]["tokens"] + 100
    assert need["kv_cache"] == 2 * (2 * 2 * 2 * 8 * 4) * tokens * 8
    out = tmp_path / "report.json"
    assert (
        main(["check", "--instruct", str(instruct), "--base", str(base), "--json", str(out)]) == 0
    )
    printed = capsys.readouterr().out
    assert "stops on: <|end|> (1)" in printed and "the pair is ready" in printed
    assert json.loads(out.read_text())["contrasted"] == len(tokenizer)
    direct = diagnose(config, contrastive=False)  # direct mode: the base is not looked at
    assert direct.base is None and direct.problems == []
    assert direct.memory[0]["weights"] == expected * 4


def _copy(src, dst, **config_changes):
    shutil.copytree(src, dst)
    config = json.loads((dst / "config.json").read_text())
    config.update(config_changes)
    (dst / "config.json").write_text(json.dumps(config))
    return dst


def _problems(capsys, *args) -> list[str]:
    assert main(["check", *args]) == 4
    lines = capsys.readouterr().out.splitlines()
    return [line.removeprefix("problem: ") for line in lines if line.startswith("problem: ")]


def test_different_tokenizers_are_one_problem(pair_dirs, tmp_path, capsys):
    from codit.models.loading import resolve_model_path

    instruct, base = pair_dirs
    other = _copy(base, tmp_path / "other-tokenizer")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(f"{resolve_model_path('tiny-base')}/{name}", other / name)
    (problem,) = _problems(capsys, "--instruct", str(instruct), "--base", str(other))
    assert "do not share a vocabulary" in problem


def test_a_base_of_another_shape_is_one_problem(pair_dirs, tmp_path, capsys):
    instruct, base = pair_dirs
    other = _copy(base, tmp_path / "deeper", num_hidden_layers=3)
    (problem,) = _problems(capsys, "--instruct", str(instruct), "--base", str(other))
    assert "not shaped like" in problem and "num_hidden_layers 3 vs 2" in problem


def test_a_template_that_fails_to_render_is_one_problem(pair_dirs, tmp_path, capsys):
    instruct, base = pair_dirs
    broken = _copy(instruct, tmp_path / "broken")
    tok_config = json.loads((broken / "tokenizer_config.json").read_text())
    for extra in broken.glob("chat_template.jinja"):
        extra.unlink()
    tok_config["chat_template"] = "{{ raise_exception('this template renders nothing') }}"
    (broken / "tokenizer_config.json").write_text(json.dumps(tok_config))
    (problem,) = _problems(capsys, "--instruct", str(broken), "--base", str(base))
    assert "fails to render" in problem and "this template renders nothing" in problem


def test_a_pair_that_does_not_fit_is_one_problem(pair_dirs, monkeypatch, capsys):
    instruct, base = pair_dirs
    monkeypatch.setattr(doctor, "host_memory_available", lambda: 2**10)  # 1 KiB
    (problem,) = _problems(
        capsys, "--instruct", str(instruct), "--base", str(base), "--device", "cpu"
    )
    assert "the pair needs about" in problem and "--device-map auto" in problem


def test_generate_checks_the_pair_first(pair_dirs, tmp_path, monkeypatch, capsys):
    instruct, base = pair_dirs
    inp = tmp_path / "in.jsonl"
    inp.write_text('{"prompt": "hello"}\n')
    args = ["generate", "--instruct", str(instruct), "--base", str(base), "--input", str(inp)]
    args += ["--max-new-tokens", "4", "--no-progress", "--device", "cpu"]
    assert main([*args, "--output", str(tmp_path / "a.jsonl")]) == 0
    err = capsys.readouterr().err
    assert "codit: stops on: <|end|> (1)" in err and "codit: system prompt: own turn" in err
    monkeypatch.setattr(doctor, "host_memory_available", lambda: 2**10)
    assert main([*args, "--output", str(tmp_path / "b.jsonl")]) == 4
    assert "the pair needs about" in capsys.readouterr().err
    assert not (tmp_path / "b.jsonl").read_text()  # nothing was generated
    assert main([*args, "--output", str(tmp_path / "c.jsonl"), "--no-check"]) == 0


@pytest.mark.skipif(
    not (__import__("families").SHARED / "families.json").is_file(),
    reason="the real tokenizers and templates are not beside the repo",
)
def test_check_on_real_families(family_pair, capsys):
    """Gemma 3 1B (rows < tokenizer), Qwen2.5 (default system prompt), a wrong-family base."""
    gemma = family_pair("gemma3-1b")
    report = diagnose(CheckConfig(instruct=str(gemma.instruct), base=str(gemma.base)))
    assert report.problems == []
    assert report.contrasted == 262144 and report.instruct.tokenizer_len == 262145
    assert report.instruct.stop_ids == [1, 106]
    assert report.system_turn["placement"] == "folded into the first user turn"
    qwen = family_pair("qwen2.5")
    report = diagnose(CheckConfig(instruct=str(qwen.instruct), base=str(qwen.base)))
    assert report.system_turn["default_when_none"] is True
    assert "You are Qwen" in report.sample["plain"]["text"]
    assert report.contrasted == 151665  # the tokenizer, not the 152064 padded rows
    problems = _problems(capsys, "--instruct", str(qwen.instruct), "--base", str(gemma.base))
    assert len(problems) == 2  # another shape and another vocabulary
