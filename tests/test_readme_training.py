"""The README's TRL snippet, taken from README.md itself, trains on codit's output.

Run on a student with a marked template (the shipped tiny pair) and on a base model without any
template (the Llama 3.1 family base with its real tokenizer), the case the snippet names.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import families as F
from codit.cli.main import main

pytest.importorskip("trl", reason="needs the train extra: pip install 'codit[train]'")

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_snippet() -> str:
    text = README.read_text()
    section = text[text.index("## Train a student on the output with TRL") :]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)  # type: ignore[union-attr]


def run_snippet(student: str, data: Path, out: Path) -> dict:
    code = readme_snippet()
    for literal, value in (
        ('"meta-llama/Llama-3.1-8B"', repr(student)),
        ('"out/codit.jsonl"', repr(str(data))),
        ('output_dir="student"', f"output_dir={str(out)!r}"),
        (
            "num_train_epochs=2",
            "max_steps=2, per_device_train_batch_size=2, report_to=[], use_cpu=True, bf16=False",
        ),
    ):
        assert literal in code, f"the README snippet no longer contains {literal}"
        code = code.replace(literal, value)
    namespace: dict = {}
    exec(compile(code, str(README), "exec"), namespace)
    return namespace


@pytest.fixture(scope="module")
def records(tmp_path_factory) -> Path:
    """codit's output on the tiny pair, as `codit generate` writes it."""
    root = tmp_path_factory.mktemp("readme")
    prompts = root / "prompts.jsonl"
    lines = [
        {"id": f"p{i}", "prompt": p}
        for i, p in enumerate(["hello", "name a river", "count to three", "a town"])
    ]
    prompts.write_text("".join(json.dumps(r) + "\n" for r in lines))
    out = root / "codit.jsonl"
    args = ["generate", "--input", str(prompts), "--output", str(out), "--max-new-tokens", "8"]
    assert main([*args, "--device", "cpu", "--no-progress"]) == 0
    return out


def _trained_text(trainer) -> str:
    batch = trainer.data_collator([trainer.train_dataset[0]])
    ids, labels = batch["input_ids"][0], batch["labels"][0]
    return trainer.processing_class.decode(ids[labels != -100])


def test_readme_snippet_on_the_tiny_pair(records, tmp_path):
    from transformers import AutoTokenizer

    from codit.models.loading import resolve_model_path
    from codit.training.templates import ensure_training_template

    student = resolve_model_path("tiny-base")
    assert ensure_training_template(AutoTokenizer.from_pretrained(student)) == "model"
    ns = run_snippet(student, records, tmp_path / "student")
    trainer = ns["trainer"]
    assert trainer.state.global_step == 2
    first = json.loads(records.read_text().splitlines()[0])
    assert _trained_text(trainer) == first["messages"][-1]["content"] + "<|end|>"


@pytest.mark.skipif(
    not (F.SHARED / "families.json").is_file(),
    reason="the real tokenizers and templates are not beside the repo",
)
def test_readme_snippet_on_a_base_model_without_a_template(records, family_pair, tmp_path):
    base = family_pair("llama3.1").base
    assert "chat_template" not in json.loads((base / "tokenizer_config.json").read_text())
    ns = run_snippet(str(base), records, tmp_path / "student")
    trainer = ns["trainer"]
    assert trainer.state.global_step == 2
    assert ns["tokenizer"].chat_template is not None
    first = json.loads(records.read_text().splitlines()[0])
    assert _trained_text(trainer) == first["messages"][-1]["content"] + "<|end_of_text|>"
