"""Write ``constraints.txt``: the exact versions, in this environment, of what codit installs.

Reads codit's requirements (core and every extra but ``vllm``) from ``pyproject.toml``, follows
their requirements through the installed packages' metadata, and pins each package found to the
version installed here. ``make setup`` installs with ``pip install -c constraints.txt``, so a
fresh machine gets the set the tests passed with. Regenerate after upgrading the environment
and running the tests::

    .venv/bin/python scripts/constraints.py > constraints.txt
"""

from __future__ import annotations

import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
SKIP_EXTRAS = {"vllm"}  # GPU machines only; not part of the tested set


def top_level() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = [Requirement(r) for r in project["dependencies"]]
    for extra, items in project["optional-dependencies"].items():
        if extra not in SKIP_EXTRAS:
            reqs += [Requirement(r) for r in items]
    return reqs


def closure(reqs: list[Requirement]) -> dict[str, str]:
    """name -> installed version, for ``reqs`` and everything they require (with their extras)."""
    pinned: dict[str, str] = {}
    todo = [(r, frozenset(r.extras)) for r in reqs]
    seen: set[tuple[str, frozenset[str]]] = set()
    while todo:
        req, extras = todo.pop()
        name = canonicalize_name(req.name)
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        try:
            dist = metadata.distribution(req.name)
        except metadata.PackageNotFoundError:
            continue  # an optional requirement this platform does not install
        pinned[name] = dist.version
        for line in dist.requires or []:
            sub = Requirement(line)
            envs = [{"extra": e} for e in extras] or [{"extra": ""}]
            if sub.marker is None or any(sub.marker.evaluate(env) for env in envs):
                todo.append((sub, frozenset(sub.extras)))
    return pinned


def main() -> None:
    pinned = closure(top_level())
    lines = [
        "# Versions the test suite passed with; used by `make setup` (pip install -c constraints.txt).",
        "# Regenerate: .venv/bin/python scripts/constraints.py > constraints.txt",
        f"# Python {sys.version.split()[0]}",
    ]
    for name in sorted(pinned):
        version = pinned[name].split("+")[
            0
        ]  # torch 2.13.0+cpu: the local tag is the index's business
        lines.append(f"{name}=={version}")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
