"""Training records are checked before any model loads; bad input gets one clear sentence."""

from __future__ import annotations

import pytest

from codit.cli.main import main
from codit.errors import ConfigError, DataError
from codit.training.config import CoinConfig, DpoConfig, TrainConfig
from codit.training.data import load_coin_pairs, load_preferences, load_sft, split
from training_fixtures import coin_records, sft_records, write_jsonl


def test_sft_records_are_read_as_codit_writes_them(tmp_path):
    records = sft_records(3) + [{"prompt": "hi", "completion": "hello"}]
    loaded = load_sft(write_jsonl(tmp_path / "d.jsonl", records))
    assert loaded[0] == {"messages": records[0]["messages"]}  # id and meta dropped, turns kept
    assert loaded[3] == {
        "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    }


def test_a_wrong_record_names_the_line_and_the_fields_found(tmp_path):
    data = write_jsonl(
        tmp_path / "d.jsonl", [*sft_records(2), {"prompt": "x", "chosen": "a", "rejected": "b"}]
    )
    with pytest.raises(
        DataError,
        match=r"d.jsonl line 3: expected an SFT record.*found fields: chosen, prompt, rejected",
    ):
        load_sft(data)
    no_answer = write_jsonl(
        tmp_path / "e.jsonl", [{"messages": [{"role": "user", "content": "x"}]}]
    )
    with pytest.raises(DataError, match="line 1.*the last turn is not the assistant's"):
        load_sft(no_answer)
    bad_json = tmp_path / "f.jsonl"
    bad_json.write_text('{"messages": []}\n{oops\n')
    with pytest.raises(DataError, match="f.jsonl, line 2: not valid JSON"):
        load_sft(bad_json)
    with pytest.raises(DataError, match="does not exist"):
        load_sft(tmp_path / "missing.jsonl")


def test_preference_records_become_conversations(tmp_path):
    data = write_jsonl(
        tmp_path / "p.jsonl", [{"prompt": "q", "chosen": "a", "rejected": "b", "meta": {"k": 1}}]
    )
    assert load_preferences(data) == [
        {
            "prompt": [{"role": "user", "content": "q"}],
            "chosen": [{"role": "assistant", "content": "a"}],
            "rejected": [{"role": "assistant", "content": "b"}],
        }
    ]
    same = write_jsonl(tmp_path / "s.jsonl", [{"prompt": "q", "chosen": "a", "rejected": "a"}])
    with pytest.raises(DataError, match="'chosen' and 'rejected' are the same"):
        load_preferences(same)
    sft = write_jsonl(tmp_path / "t.jsonl", sft_records(1))
    with pytest.raises(DataError, match="found fields: id, messages, meta"):
        load_preferences(sft)


def test_coin_pairs_swap_the_last_user_turn(tmp_path):
    pairs = load_coin_pairs(write_jsonl(tmp_path / "c.jsonl", coin_records(2)))
    assert pairs[0]["paraphrased"][0]["content"] == "write three bullet points ebout epples"
    assert pairs[0]["paraphrased"][1] == pairs[0]["messages"][1]
    assert pairs[0]["group"] == "g0"
    with pytest.raises(DataError, match="expected a CoIN pair.*found fields: id, messages, meta"):
        load_coin_pairs(write_jsonl(tmp_path / "x.jsonl", sft_records(1)))


def test_split_is_seeded_and_keeps_training_records():
    train, held = split(list(range(10)), 0.2, seed=0)
    assert len(held) == 2 and sorted(train + held) == list(range(10))
    assert split(list(range(10)), 0.2, seed=0) == (train, held)
    with pytest.raises(DataError, match="leaves no training records"):
        split([1], 0.5, seed=0)


def test_out_of_range_options_are_all_reported_together():
    with pytest.raises(ConfigError) as err:
        TrainConfig(
            model="m",
            data="d",
            output="o",
            lr=-1,
            warmup_ratio=1.5,
            batch_size=0,
            eval_split=0.9,
            lora_dropout=1.0,
        )
    assert len(err.value.problems) == 5
    assert "--warmup-ratio must be in [0, 1), got 1.5" in str(err.value)
    with pytest.raises(
        ConfigError, match="--model is required; --data is required; --output is required"
    ):
        TrainConfig()
    with pytest.raises(ConfigError, match="--beta must be > 0"):
        DpoConfig(model="m", data="d", output="o", beta=0)
    with pytest.raises(ConfigError, match="--temperature must be > 0"):
        CoinConfig(model="m", data="d", output="o", temperature=0)


@pytest.mark.parametrize("method", ["sft", "dpo", "coin"])
def test_cli_fails_with_one_sentence_and_no_model_load(method, tmp_path, capsys):
    code = main(
        [
            "train",
            method,
            "--model",
            "no/such/dir/model",
            "--data",
            str(tmp_path / "none.jsonl"),
            "--output",
            str(tmp_path / "o"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 3 and err.startswith("codit: error: data file") and err.count("\n") == 1
    code = main(
        ["train", method, "--model", "m", "--data", "d", "--output", "o", "--batch-size", "0"]
    )
    assert code == 2 and "--batch-size must be >= 1, got 0" in capsys.readouterr().err


def test_cli_refuses_a_wrong_record_before_loading_the_model(tmp_path, capsys):
    data = write_jsonl(tmp_path / "d.jsonl", [{"text": "plain"}])
    code = main(
        [
            "train",
            "sft",
            "--model",
            "no/such/dir/model",
            "--data",
            str(data),
            "--output",
            str(tmp_path / "o"),
        ]
    )
    assert code == 3 and "line 1: expected an SFT record" in capsys.readouterr().err


def test_every_train_help_exits_zero():
    for argv in (
        ["train", "--help"],
        ["train", "sft", "--help"],
        ["train", "dpo", "--help"],
        ["train", "coin", "--help"],
    ):
        with pytest.raises(SystemExit) as done:
            main(argv)
        assert done.value.code == 0
