"""Reading JSON-lines files: every line checked, every problem named by file and line.

``iter_lines`` is the one lazy reader: it yields each non-blank line's parsed value, or why it
has none (invalid UTF-8, not JSON, not an object), with its location. A UTF-8 byte-order mark
at the start and CRLF line ends are accepted; a UTF-16 file is refused as a whole. Callers
either stop on the collected problems (``read_records``) or validate further. Writing is
``codit.io.records`` (append-only) and ``codit.io.atomic`` (whole files).
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codit.errors import DataError
from codit.io.invalid import RAW_CHARS, Invalid, invalid_input

UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


@dataclass(frozen=True)
class Line:
    """One non-blank line: its location and JSON object, or the ``Invalid`` it is."""

    number: int
    where: str
    value: dict[str, Any] | None
    invalid: Invalid | None = None


def decode_line(raw: bytes, where: str) -> tuple[str | None, Invalid | None]:
    """Bytes of one line -> its text without the line end, or why it is not UTF-8."""
    try:
        return raw.decode("utf-8").rstrip("\r\n"), None
    except UnicodeDecodeError as err:
        shown = raw.decode("utf-8", "replace").rstrip("\r\n")[:RAW_CHARS]
        problem = f"not valid UTF-8 (byte 0x{raw[err.start]:02x} at column {err.start + 1})"
        return None, Invalid(where, problem, shown)


def refuse_utf16(path: Path, head: bytes) -> None:
    if head.startswith(UTF16_BOMS):
        raise DataError(
            f"{path} is UTF-16 (it starts with a UTF-16 byte-order mark); save it as UTF-8"
        )


def parse_object(text: str, where: str) -> tuple[dict[str, Any] | None, Invalid | None]:
    """One line's text -> its JSON object, or why it is not one."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        return None, Invalid(
            where, f"not valid JSON ({err.msg} at column {err.colno})", text[:RAW_CHARS]
        )
    if not isinstance(value, dict):
        kind = "list" if isinstance(value, list) else type(value).__name__
        return None, Invalid(where, f"a JSON {kind}, not an object", text[:RAW_CHARS])
    return value, None


def iter_lines(path: Path) -> Iterator[Line]:
    """Every non-blank line of a JSONL file, parsed or marked invalid (lazy)."""
    path = Path(path)
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if number == 1:
                refuse_utf16(path, raw)
                raw = raw.removeprefix(codecs.BOM_UTF8)
            where = f"{path}, line {number}"
            text, bad = decode_line(raw, where)
            if text is not None and not text.strip():
                continue
            value = None
            if text is not None:
                value, bad = parse_object(text, where)
            yield Line(number, where, value, bad)


def iter_objects(path: Path, missing_ok: bool = False) -> Iterator[dict[str, Any]]:
    """The objects of a JSONL file, lazily; bad lines are collected and, once the good ones
    are all yielded, raised as one ``DataError`` naming all of them (as ``read_records``)."""
    path = Path(path)
    if not path.is_file():
        if missing_ok:
            return
        raise DataError(f"{path} does not exist")
    bad = []
    for line in iter_lines(path):
        if line.invalid is not None:
            bad.append(line.invalid)
        elif line.value is not None:
            yield line.value
    if bad:
        raise invalid_input(path, bad)


def read_records(path: Path, missing_ok: bool = False) -> list[dict[str, Any]]:
    """All objects of a JSONL file; any bad line is a ``DataError`` naming all of them.

    Args:
        path: the file.
        missing_ok: a missing file reads as no records instead of an error.
    """
    return list(iter_objects(path, missing_ok))


def iter_records(path: Path) -> list[dict[str, Any]]:
    """All records of a JSONL file (``read_records``; kept for its callers)."""
    return read_records(path)


def read_ids(path: Path, key: str = "id") -> set[str]:
    """Ids of the records already in ``path`` (empty when it does not exist)."""
    return {str(r[key]) for r in iter_objects(path, missing_ok=True) if key in r}
