"""Shared fixtures: a tiny random instruct/base pair saved as model directories, and the real
families' tiny pairs (``families.py``), built once per session for all pytest-xdist workers."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))
if os.environ.get("PYTEST_XDIST_WORKER"):
    # one torch thread a worker (and in the runs it starts): with -n 2 on 2 cores, torch's
    # default of a thread per core puts 4 spinning threads on 2 cores, 3-6x slower
    os.environ.setdefault("OMP_NUM_THREADS", "1")

import tiny_models  # noqa: E402


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook; unused without it (-p no:xdist)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``make test`` (``-n 2``): which tests must share a worker, so a module fixture is set up once.

    - a module without a module-scoped fixture is spread test by test (the subprocess-heavy
      ones are the longest tests);
    - a module with one runs on one worker, as it would alone (a server, a Ray instance, a
      loaded pair);
    - a module whose module fixture is parametrized runs one parameter per unit: the family
      matrix spreads family by family.

    Each module's source says which case it is. (``--dist loadgroup`` would do this with marks,
    but pytest-xdist 3.8 cannot rename pytest 9's node ids, so its groups are ignored.)
    """
    from xdist.scheduler import LoadScopeScheduling

    root = config.rootpath
    kinds: dict[str, str] = {}

    def kind(module: str) -> str:
        if module not in kinds:
            text = (root / module).read_text() if (root / module).is_file() else ""
            kinds[module] = (
                "by parameter"
                if 'scope="module", params=' in text
                else "together"
                if 'scope="module"' in text
                else "spread"
            )
        return kinds[module]

    class ByModuleFixture(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            how = kind(module)
            if how == "spread":
                return nodeid
            if how == "by parameter" and nodeid.endswith("]"):
                return f"{module}[{nodeid.rsplit('[', 1)[1]}"
            return module

    return ByModuleFixture(config, log)


@pytest.fixture(scope="session")
def pair_dirs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(instruct_dir, base_dir): random Llama models sharing a locally trained tokenizer."""
    return tiny_models.save_pair(tmp_path_factory.mktemp("pair"))


@pytest.fixture(scope="session")
def family_pair(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Any]:
    """``family_pair(name)``: that family's ``BuiltPair``, built on first use in this session."""
    import families

    base = tmp_path_factory.getbasetemp()
    # xdist gives each worker its own basetemp inside the session's: share the one above it
    cache = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "family-pairs"
    return lambda name: families.cached_pair(families.FAMILIES[name], cache)


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
