"""The output options every writing command shares: bad input lines, and how often to fsync.

A command's config holds one ``OutputOptions`` field, so these become the same three flags on
every command (``--skip-invalid``, ``--fsync-every``, ``--fsync-seconds``). None of them shapes
the records, so a rerun may change them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from codit.errors import ConfigError
from codit.io.records import FSYNC_EVERY, FSYNC_SECONDS


@dataclass(frozen=True)
class OutputOptions:
    """How a run treats bad input lines and how much a power cut may cost."""

    skip_invalid: bool = field(
        default=False,
        metadata={
            "help": "log bad input lines in the errors file and go on, instead of stopping "
            "before any work"
        },
    )
    fsync_every: int = field(
        default=FSYNC_EVERY,
        metadata={"help": "fsync the records after this many (0: only at the end)"},
    )
    fsync_seconds: float = field(
        default=FSYNC_SECONDS,
        metadata={"help": "fsync at most this many seconds after a record is written (0: off)"},
    )

    def __post_init__(self) -> None:
        problems = []
        if self.fsync_every < 0:
            problems.append(f"--fsync-every must be >= 0, got {self.fsync_every}")
        if self.fsync_seconds < 0:
            problems.append(f"--fsync-seconds must be >= 0, got {self.fsync_seconds}")
        if problems:
            raise ConfigError(problems)
