"""Shipped presets: each one loads by name wherever ``--config`` is taken, builds its command's
config, and sets exactly the values its method page (docs/methods/*.md) lists for it; the
page's "codit default" column is checked against the dataclasses too."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest

from codit.config import PRESETS, _build, _flat_names, load_yaml, preset_path
from codit.errors import DataError
from codit.generation.config import GenerateConfig
from codit.pipelines.codeclm import CodecLMConfig
from codit.pipelines.ecd import EcdConfig
from codit.training.config import CoinConfig

DOCS = Path(__file__).resolve().parents[1] / "docs" / "methods"
# method page -> (preset, config class, the required settings a run adds)
METHODS: dict[str, tuple[str, type, dict[str, Any]]] = {
    "codit": ("codit-paper", GenerateConfig, {"input": "p.jsonl", "output": "o.jsonl", "instruct": "m", "base": "b"}),
    "codeclm": ("codeclm-paper", CodecLMConfig, {"strong": "local:s", "target": "local:t", "seeds": "s.jsonl", "output": "o.jsonl"}),
    "coin": ("coin-authors", CoinConfig, {"model": "m", "data": "d.jsonl", "output": "o"}),
    "ecd": ("ecd-reconstruction", EcdConfig, {"seeds": "s.jsonl", "evolver": "local:e", "responder": "local:r", "output": "o.jsonl"}),
}  # fmt: skip


def build(name: str) -> Any:
    preset, cls, required = next(v for v in METHODS.values() if v[0] == name)
    return _build(cls, {**load_yaml(name), **required})


def value(config: Any, name: str) -> Any:
    """A field of ``config`` or of one of its nested configs."""
    if hasattr(config, name):
        return getattr(config, name)
    for f in dataclasses.fields(config):
        nested = getattr(config, f.name)
        if dataclasses.is_dataclass(nested) and hasattr(nested, name):
            return getattr(nested, name)
    raise AssertionError(f"{type(config).__name__} has no setting {name}")


def plain(v: Any) -> Any:
    if isinstance(v, tuple | list):
        return [plain(x) for x in v]
    if isinstance(v, int | float) and not isinstance(v, bool):
        return float(v)
    return v


def cell(text: str) -> tuple[bool, Any]:
    """(is a value, the value): a value is written in backticks; anything else is prose."""
    import yaml

    m = re.fullmatch(r"`([^`]*)`", text.strip())
    if not m:
        return False, None
    raw = m.group(1).strip()
    if raw == "unset":
        return True, None
    try:
        return True, float(raw)
    except ValueError:
        return True, plain(yaml.safe_load(raw))


def settings_table(page: str) -> list[dict[str, str]]:
    """The rows of the page's table whose header starts with ``| flag |``."""
    lines = (DOCS / f"{page}.md").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| flag |"))
    head = [c.strip() for c in lines[start].strip("|").split("|")]
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append(dict(zip(head, (c.strip() for c in line.strip("|").split("|")), strict=True)))
    return rows


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_ships_and_builds_its_config(name: str) -> None:
    preset, cls, _ = next(v for v in METHODS.values() if v[0] == name)
    assert preset_path(name).is_file()
    assert set(load_yaml(name)) <= _flat_names(cls)  # no key the command would refuse
    build(name)  # and every value passes the config's checks


def test_a_file_of_that_name_wins_and_unknown_names_list_the_presets(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("codit-paper").write_text("alpha: 0.5\n")
    assert load_yaml("codit-paper") == {"alpha": 0.5}
    with pytest.raises(DataError, match="coin-authors"):
        load_yaml("coin-author")


def test_presets_load_through_the_cli(tmp_path: Path) -> None:
    import argparse

    from codit.config import add_arguments, from_namespace

    parser = argparse.ArgumentParser()
    parser.add_argument("--config")
    add_arguments(parser, CoinConfig)
    args = parser.parse_args(
        ["--config", "coin-authors", "--model", "m", "--data", "d", "--output", "o", "--lr", "2e-4"]
    )
    config = from_namespace(CoinConfig, args)
    assert (config.lora_r, config.negatives, config.grad_accum, config.lr) == (16, "pair", 32, 2e-4)
    assert config.lora_targets == ("q_proj", "k_proj", "v_proj", "o_proj")


@pytest.mark.parametrize("page", sorted(METHODS))
def test_method_page_tables_match_the_presets_and_the_defaults(page: str) -> None:
    preset, cls, required = METHODS[page]
    config = build(preset)
    default = cls(**required)
    rows = settings_table(page)
    listed = set()
    preset_column = next(k for k in rows[0] if k.startswith("preset"))
    assert preset in preset_column
    for row in rows:
        name = row["flag"].strip("`").removeprefix("--").replace("-", "_")
        listed.add(name)
        is_value, expected = cell(row[preset_column])
        if is_value:
            assert plain(value(config, name)) == expected, (page, name)
        is_value, expected = cell(row["codit default"])
        if is_value:
            assert plain(value(default, name)) == expected, (page, name, "default")
        is_value, paper = cell(row["paper"])
        if is_value and "differs" not in row.get("note", ""):
            assert cell(row[preset_column]) == (True, paper), (page, name, "paper")
    assert set(load_yaml(preset)) <= listed, set(load_yaml(preset)) - listed


def test_no_doc_or_help_text_points_outside_the_repository() -> None:
    root = Path(__file__).resolve().parents[1]
    files = [root / "README.md", *(root / "docs").rglob("*.md"), *(root / "src").rglob("*.py")]
    files += [*(root / "src" / "codit" / "presets").glob("*.yaml")]
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert "../shared" not in text and "shared/methods" not in text, path
        assert "shared/data" not in text, path
