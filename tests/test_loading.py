"""Loading like a GPU user: weights straight onto the device and dtype, ``--device-map auto``,
``--base-device``, and model code that runs only when asked."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
import torch

from codit.cli.main import main
from codit.errors import ModelError
from codit.models.loading import load_config, load_model, load_tokenizer
from codit.models.pair import load_pair


def test_weights_load_onto_the_device_in_the_dtype_without_a_move(pair_dirs, monkeypatch):
    """from_pretrained is told the device and dtype, and the model is not moved afterwards."""
    import transformers

    instruct, _ = pair_dirs
    original = transformers.PreTrainedModel.from_pretrained.__func__
    seen: dict = {}

    def no_move(self, *args, **kwargs):
        raise AssertionError("the model was moved after loading")

    def recording(cls, *args, **kwargs):
        seen.update(kwargs)
        model = original(cls, *args, **kwargs)
        monkeypatch.setattr(torch.nn.Module, "to", no_move)  # from here on, no move
        return model

    monkeypatch.setattr(transformers.PreTrainedModel, "from_pretrained", classmethod(recording))
    loaded = load_model(str(instruct), device="cpu", dtype="bfloat16")
    assert seen["device_map"] == {"": "cpu"} and seen["dtype"] == torch.bfloat16
    assert {p.dtype for p in loaded.model.parameters()} == {torch.bfloat16}
    assert {p.device.type for p in loaded.model.parameters()} == {"cpu"}
    assert loaded.info["dtype"] == "bfloat16" and loaded.info["device"] == "cpu"


def _bf16_checkpoint(src: Path, out: Path) -> Path:
    """The tiny model stored in bfloat16, sharded, with a stray safetensors file beside it."""
    import transformers
    from safetensors.torch import save_file

    model = transformers.AutoModelForCausalLM.from_pretrained(src, dtype=torch.bfloat16)
    size = sum(p.numel() * p.element_size() for p in model.parameters())
    model.save_pretrained(out, max_shard_size=size // 3)  # three shards or so
    save_file({"junk": torch.zeros(3)}, out / "consolidated.safetensors")  # not in the index
    return out


def test_a_cast_reads_the_checkpoint_by_pread_to_the_same_model(pair_dirs, tmp_path):
    """float32 from a bfloat16 checkpoint: read by pread (not memory-mapped, see
    benchmarks/load_memory.py), the weights and generation config equal transformers' own."""
    import transformers

    from codit.models.loading import checkpoint_shards, read_by_pread

    instruct, _ = pair_dirs
    path = _bf16_checkpoint(instruct, tmp_path / "bf16")
    shards = checkpoint_shards(str(path))
    index = json.loads((path / "model.safetensors.index.json").read_text())["weight_map"]
    assert [s.name for s in shards] == sorted(set(index.values())) and len(shards) > 1
    with contextlib.ExitStack() as files:  # transformers 4 reads and closes one shard at a time
        lazy = read_by_pread(str(path), files)
        assert (lazy is not None) == (int(transformers.__version__.split(".")[0]) >= 5)
        assert lazy is None or sorted(lazy) == sorted(index)
    loaded = load_model(str(path), device="cpu", dtype="float32")
    reference = transformers.AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    ours, theirs = loaded.model.state_dict(), reference.state_dict()
    assert sorted(ours) == sorted(theirs)
    for key, value in theirs.items():
        assert ours[key].dtype == torch.float32 and torch.equal(ours[key], value), key
    assert loaded.model.generation_config.to_dict() == reference.generation_config.to_dict()
    assert loaded.info["architecture"] == reference.config.architectures[0]
    assert loaded.model.config.name_or_path == str(path)


def test_device_map_auto_and_base_device_on_cpu(pair_dirs):
    instruct, base = pair_dirs
    pair = load_pair(str(instruct), str(base), device="cpu", base_device="cpu", device_map="auto")
    assert pair.instruct.info["device"] == pair.base.info["device"] == "cpu"
    plain = load_pair(str(instruct), str(base), device="cpu")
    for a, b in zip(
        pair.base.model.state_dict().values(), plain.base.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b)


def test_base_device_gives_the_same_records(pair_dirs, tmp_path):
    instruct, base = pair_dirs
    inp = tmp_path / "in.jsonl"
    inp.write_text('{"id": "a", "prompt": "hello fox"}\n{"id": "b", "prompt": "no commas"}\n')
    outs = []
    for i, extra in enumerate(([], ["--base-device", "cpu"], ["--device-map", "auto"])):
        out = tmp_path / f"out{i}.jsonl"
        args = ["generate", "--instruct", str(instruct), "--base", str(base), "--input", str(inp)]
        args += ["--output", str(out), "--max-new-tokens", "6", "--temperature", "0"]
        assert main([*args, "--device", "cpu", "--no-progress", *extra]) == 0
        outs.append([json.loads(line)["messages"][-1] for line in out.read_text().splitlines()])
    assert outs[0] == outs[1] == outs[2]


def test_bad_device_map_is_a_config_error(pair_dirs, tmp_path, capsys):
    instruct, base = pair_dirs
    inp = tmp_path / "in.jsonl"
    inp.write_text('{"prompt": "hello"}\n')
    args = ["generate", "--input", str(inp), "--output", str(tmp_path / "o.jsonl")]
    with pytest.raises(SystemExit) as stopped:  # the flag's choices come from its setting
        main([*args, "--device-map", "balanced"])
    assert stopped.value.code == 2
    assert "argument --device-map: invalid choice: 'balanced'" in capsys.readouterr().err


@pytest.fixture()
def remote_code_model(pair_dirs, tmp_path) -> tuple[Path, Path]:
    """A model directory whose config points at Python code in the folder (``auto_map``)."""
    import shutil

    instruct, _ = pair_dirs
    root = tmp_path / "remote"
    shutil.copytree(instruct, root)
    marker = tmp_path / "code-ran"
    config = json.loads((root / "config.json").read_text())
    config["auto_map"] = {
        "AutoConfig": "configuration_custom.CustomConfig",
        "AutoModelForCausalLM": "modeling_custom.CustomModel",
    }
    (root / "config.json").write_text(json.dumps(config))
    code = f"open({str(marker)!r}, 'w').write('ran')\nfrom transformers import LlamaConfig as CustomConfig\n"
    (root / "configuration_custom.py").write_text(code)
    (root / "modeling_custom.py").write_text(code)
    return root, marker


def test_remote_code_is_refused_unless_asked(remote_code_model, tmp_path, capsys):
    root, marker = remote_code_model
    for load in (load_config, load_tokenizer, load_model):
        with pytest.raises(ModelError, match="--trust-remote-code"):
            load(str(root))
    inp = tmp_path / "in.jsonl"
    inp.write_text('{"prompt": "hello"}\n')
    code = main(
        ["generate", "--mode", "direct", "--instruct", str(root), "--input", str(inp)]
        + ["--output", str(tmp_path / "o.jsonl"), "--device", "cpu", "--no-progress"]
    )
    assert code != 0
    assert "pass --trust-remote-code" in capsys.readouterr().err
    assert not marker.exists()  # nothing shipped with the model ran
