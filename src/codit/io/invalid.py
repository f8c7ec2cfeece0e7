"""Bad input lines: collected over a whole file and reported together, or skipped on request.

Every reader of user files yields ``Invalid`` entries instead of stopping at the first bad
line, so one run names them all: ``invalid_input`` turns them into one ``DataError`` that shows
the first ``SHOWN`` and counts the rest. With ``--skip-invalid`` a command writes them to its
errors file instead (``as_error_record``) and goes on with the good lines.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from codit.errors import DataError

SHOWN = 20  # bad lines spelled out in one error message; the rest are counted
RAW_CHARS = 2000  # how much of a bad line the errors file keeps


@dataclass(frozen=True)
class Invalid:
    """One bad input line (or row, or record).

    Attributes:
        where: ``file, line N`` (or ``row N``, ``record N``): what the user opens to fix it.
        problem: what is wrong, as a phrase ("the prompt is empty").
        raw: the line's text as read (cut to ``RAW_CHARS``), for the errors file.
    """

    where: str
    problem: str
    raw: str = ""

    def __str__(self) -> str:
        return f"{self.where}: {self.problem}"


def invalid_input(source: object, bad: list[Invalid], skippable: bool = False) -> DataError:
    """One ``DataError`` naming every bad line of ``source`` (the first ``SHOWN`` and a count)."""
    hint = (
        "fix them, or pass --skip-invalid to log them in the errors file and go on"
        if skippable
        else "fix them and rerun"
    )
    if len(bad) == 1:
        return DataError(f"{bad[0]}; {hint.replace('them', 'it')}")
    shown = "\n  ".join(str(b) for b in bad[:SHOWN])
    more = f"\n  ... and {len(bad) - SHOWN} more" if len(bad) > SHOWN else ""
    return DataError(f"{source} has {len(bad)} invalid lines; {hint}:\n  {shown}{more}")


def as_error_record(bad: Invalid) -> dict[str, Any]:
    """The errors-file record of a skipped bad line; it carries no ``id``, so it never counts
    as a finished record (its key for exactly-once is ``input``)."""
    return {"input": bad.where, "error": f"invalid input: {bad.problem}", "raw": bad.raw}
