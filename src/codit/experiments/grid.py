"""The alpha x beta grid of ``codit experiment codit``: parsing the cells, naming them, distinct-n.

A grid is every pair of the ``--alpha`` and ``--beta`` lists; each pair is a *cell* with its own
CoDIT teacher data (and, when asked, its own students), named by ``cell_tag`` in the run
directory. The direct arm does not depend on alpha or beta, so one direct dataset and one set of
direct students serve every cell. Pure functions only; ``codit_mini`` does the work.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

DEFAULT_CELL = (0.01, 1.0)  # the CoDIT authors' alpha and beta


def numbers(value: Any, name: str) -> tuple[tuple[float, ...], list[str]]:
    """``0.1``, ``"0.1,0.01"`` or ``("0.1", "0.01,0.001")`` as floats in order, duplicates dropped.

    Returns:
        The numbers and the problems (sentences naming ``--name``), one of them empty.
    """
    items = value if isinstance(value, tuple | list) else (value,)
    out: list[float] = []
    problems = []
    for item in items:
        for part in str(item).split(","):
            try:
                number = float(part.strip())
            except ValueError:
                problems.append(f"--{name} takes numbers separated by commas, not {part!r}")
                continue
            if number not in out:
                out.append(number)
    if not out and not problems:
        problems.append(f"--{name} needs at least one value")
    return tuple(out), problems


def cells(alphas: Iterable[float], betas: Iterable[float]) -> list[tuple[float, float]]:
    """Every (alpha, beta) pair, alpha-major, in the order given."""
    return [(a, b) for a in alphas for b in betas]


def cell_name(alpha: float, beta: float) -> str:
    """``0.01:1``: how a cell is written on the command line and in reports."""
    return f"{alpha:g}:{beta:g}"


def cell_tag(alpha: float, beta: float) -> str:
    """``codit-a0.01-b1``: how a cell's files are named in the run directory."""
    return f"codit-a{alpha:g}-b{beta:g}"


def student_cells(
    names: Iterable[str], alphas: tuple[float, ...], betas: tuple[float, ...]
) -> tuple[list[tuple[float, float]], list[str]]:
    """The cells named by ``--students`` (``ALPHA:BETA``, comma lists allowed); all when none.

    Returns:
        The cells in grid order, and the problems (a name that is not ALPHA:BETA or not a cell).
    """
    grid = cells(alphas, betas)
    wanted: list[tuple[float, float]] = []
    problems = []
    for name in (part.strip() for item in names for part in str(item).split(",")):
        if not name:
            continue
        a, sep, b = name.partition(":")
        try:
            cell = (float(a), float(b))
        except ValueError:
            cell = None
        if not sep or cell is None:
            problems.append(f"--students takes ALPHA:BETA cells such as 0.01:1, not {name!r}")
        elif cell not in grid:
            problems.append(
                f"--students {name} is not a cell of the grid "
                f"({', '.join(cell_name(*c) for c in grid)})"
            )
        elif cell not in wanted:
            wanted.append(cell)
    if not wanted and not problems:
        return grid, []
    return [c for c in grid if c in wanted], problems


def default_cell(grid: list[tuple[float, float]]) -> tuple[float, float]:
    """The authors' cell (alpha 0.01, beta 1) when it is in the grid, else the first cell."""
    return DEFAULT_CELL if DEFAULT_CELL in grid else grid[0]


def distinct_n(texts: Iterable[str], n: int = 2) -> float:
    """Distinct-n of a corpus (Li et al. 2016): distinct word n-grams / all word n-grams.

    Words are the lower-cased whitespace-separated pieces of each text; n-grams never cross
    texts. 0.0 when the texts hold no n-gram at all.
    """
    seen: set[tuple[str, ...]] = set()
    total = 0
    for text in texts:
        words = text.lower().split()
        grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
        seen.update(grams)
        total += len(grams)
    return len(seen) / total if total else 0.0
