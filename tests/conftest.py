"""Shared fixtures: a tiny random instruct/base pair saved as model directories."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import tiny_models  # noqa: E402


@pytest.fixture(scope="session")
def pair_dirs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(instruct_dir, base_dir): random Llama models sharing a locally trained tokenizer."""
    return tiny_models.save_pair(tmp_path_factory.mktemp("pair"))


@pytest.fixture(scope="session")
def tokenizer():
    return tiny_models.make_tokenizer()


@pytest.fixture(scope="session")
def models64(tokenizer):
    """(instruct, base) in float64, so greedy comparisons never hinge on rounding."""
    import torch

    return (
        tiny_models.make_model(tokenizer, 1).to(torch.float64),
        tiny_models.make_model(tokenizer, 2).to(torch.float64),
    )
