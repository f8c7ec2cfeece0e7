"""Graceful stops: the first SIGINT or SIGTERM asks the run to stop, a second one ends it at once.

Inside ``graceful_stop()`` the first signal only sets a flag (and says so on stderr): the run
stops admitting work, lets what is in flight finish and be written, writes its manifest and
raises ``Interrupted`` (exit 130 for SIGINT, 143 for SIGTERM). A second signal exits at once
with the same code; records already written are whole (each is one ``write``), and a torn last
line, if any, is cut by the next run. Handlers are installed only in the main thread and are
restored on exit; nested blocks share one flag.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterable, Iterator
from types import FrameType
from typing import TypeVar

from codit.errors import Interrupted

T = TypeVar("T")
SIGNALS = (signal.SIGINT, signal.SIGTERM)
_state: dict[str, int] = {"depth": 0, "signum": 0}


def requested() -> int:
    """The signal that asked for a stop (0: none)."""
    return _state["signum"]


def until_stopped(items: Iterable[T]) -> Iterator[T]:
    """``items`` until a stop is asked for: what a run admits after SIGINT/SIGTERM is nothing."""
    for item in items:
        if requested():
            return
        yield item


def check(resume_hint: str) -> None:
    """Raise ``Interrupted`` if a stop was asked for.

    Args:
        resume_hint: what was kept and how to resume, e.g. "12 records are kept in out.jsonl;
            rerun the same command to resume".
    """
    signum = requested()
    if signum:
        name = signal.Signals(signum).name
        raise Interrupted(f"stopped by {name}; {resume_hint}", signum)


def _handle(signum: int, frame: FrameType | None) -> None:
    if _state["signum"]:
        os.write(2, f"\ncodit: second {signal.Signals(signum).name}: exiting now\n".encode())
        os._exit(128 + signum)
    _state["signum"] = signum
    os.write(
        2,
        f"\ncodit: {signal.Signals(signum).name}: finishing the records in flight, then "
        "stopping (send it again to exit at once)\n".encode(),
    )


@contextlib.contextmanager
def graceful_stop() -> Iterator[None]:
    """Turn SIGINT/SIGTERM into a stop request for the duration of the block."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {} if _state["depth"] else {s: signal.signal(s, _handle) for s in SIGNALS}
    _state["depth"] += 1
    try:
        yield
    finally:
        _state["depth"] -= 1
        if not _state["depth"]:
            for s, handler in previous.items():
                signal.signal(s, handler)
            _state["signum"] = 0
