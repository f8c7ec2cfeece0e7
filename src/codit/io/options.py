"""The output options every writing command shares: bad input lines, and how often to fsync.

A command's config holds one ``OutputOptions`` field, so these become the same three flags on
every command (``--skip-invalid``, ``--fsync-every``, ``--fsync-seconds``). None of them shapes
the records, so a rerun may change them.
"""

from __future__ import annotations

from dataclasses import dataclass

from codit.io.records import FSYNC_EVERY, FSYNC_SECONDS
from codit.settings import check, setting


@dataclass(frozen=True)
class OutputOptions:
    """How a run treats bad input lines and how much a power cut may cost."""

    skip_invalid: bool = setting(
        False,
        "log bad input lines in the errors file and go on, instead of stopping before any work",
    )
    fsync_every: int = setting(
        FSYNC_EVERY, "fsync the records after this many (0: only at the end)", ge=0
    )
    fsync_seconds: float = setting(
        FSYNC_SECONDS, "fsync at most this many seconds after a record is written (0: off)", ge=0
    )

    def __post_init__(self) -> None:
        check(self)
