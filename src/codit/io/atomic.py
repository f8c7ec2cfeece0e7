"""Whole-file writes that a crash cannot tear: write a temporary file, fsync it, rename it.

After a crash at any instant the path holds the old content or the new one, never a mix. A
full disk (or a file-size limit) becomes ``OutOfSpace`` with the temporary file removed and the
old file untouched. For append-only record files see ``codit.io.records``.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from codit.errors import OutOfSpace

# Errors that mean "no room": a full disk, a quota, a file-size limit (RLIMIT_FSIZE).
NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def no_space(err: BaseException) -> bool:
    """Whether ``err`` says there was no room: an ``OSError`` with a ``NO_SPACE`` errno, or a
    library's own error that quotes one (safetensors: ``I/O error: ... (os error 28)``)."""
    if isinstance(err, OSError) and err.errno is not None:
        return err.errno in NO_SPACE
    return any(f"(os error {code})" in str(err) for code in NO_SPACE)


def out_of_space(path: Path, err: BaseException, kept: str = "") -> OutOfSpace:
    """The one sentence for a write that found no room."""
    reason = getattr(err, "strerror", None) or str(err)
    return OutOfSpace(
        f"cannot write {path}: {reason}{kept}; free some space and rerun the same command"
    )


@contextlib.contextmanager
def replacing(path: Path, kept: str | None = None) -> Iterator[BinaryIO]:
    """``with replacing(path) as handle:`` writes a binary file that replaces ``path`` when the
    block ends (fsynced, then renamed); an error in the block leaves ``path`` as it was.

    Args:
        path: the file to replace; its folder is created.
        kept: what the full-disk sentence says was kept (default: the previous file, if any).

    Raises:
        OutOfSpace: the disk is full (or a file-size limit is reached); the temporary file is
            removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if kept is None:
        kept = f" (the previous {path.name} is unchanged)" if path.exists() else ""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as err:  # an interrupt too: no temporary file is left behind
        tmp.unlink(missing_ok=True)
        if no_space(err):  # a library writing into the handle may quote the errno in its text
            raise out_of_space(path, err, kept) from None
        raise
    sync_dir(path.parent)


def write_text(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` (UTF-8) atomically, creating its folder."""
    with replacing(path) as handle:
        handle.write(text.encode("utf-8"))


def write_json(path: Path, value: Any) -> None:
    """Replace ``path`` with ``value`` as indented JSON, atomically."""
    write_text(path, json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n")


def write_lines(path: Path, rows: list[dict[str, Any]]) -> None:
    """Replace ``path`` with ``rows`` as JSON lines, atomically."""
    write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def sync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
