"""The errors codit raises on purpose.

Every error here carries one sentence that tells the user what to fix. The CLI prints that
sentence and exits with the error's ``exit_code``; a traceback appears only with ``--debug``.
Anything else that escapes is a bug and is shown as one.

    CoditError                      exit 1
    ├── ConfigError                 exit 2   a flag or config value is out of range
    ├── DataError                   exit 3   an input file is missing or malformed
    ├── ModelError                  exit 4   a model cannot be loaded or the pair is incompatible
    ├── BackendError                exit 5   a text backend failed
    │   ├── RateLimited
    │   └── ContextTooLong
    ├── MissingDependency           exit 6   an optional extra is not installed
    ├── OutputLocked                exit 7   another run is writing the same output
    ├── OutOfSpace                  exit 8   the disk (or a file-size limit) is full
    └── Interrupted                 exit 130 (SIGINT) / 143 (SIGTERM): stopped by a signal

Exit 0 is success and 2 is also argparse's code for a bad flag. A run that stopped with 7, 8,
130 or 143 kept every finished record: rerunning the same command resumes it.
"""

from __future__ import annotations


class CoditError(Exception):
    """Base of codit's deliberate errors; ``str(err)`` is the message for the user."""

    exit_code = 1


class ConfigError(CoditError):
    """A setting is invalid; the message names the flag and the allowed range."""

    exit_code = 2

    def __init__(self, problems: str | list[str]):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("; ".join(self.problems))


class DataError(CoditError):
    """An input file is missing, unreadable or malformed; the message names file and line."""

    exit_code = 3


class ModelError(CoditError):
    """A model or tokenizer cannot be loaded, or two models cannot be used as a pair."""

    exit_code = 4


class BackendError(CoditError):
    """A text backend (an LLM behind an API, or a local model) failed."""

    exit_code = 5


class RateLimited(BackendError):
    """The server answered 429 and retries were exhausted."""


class ContextTooLong(BackendError):
    """The prompt does not fit the model's context window."""


class MissingDependency(CoditError):
    """An optional extra is needed; the message says what to ``pip install``."""

    exit_code = 6


class OutputLocked(CoditError):
    """Another live process holds the output's lock; the message names it (pid and host)."""

    exit_code = 7


class OutOfSpace(CoditError):
    """A write failed for lack of space (ENOSPC, EDQUOT) or a file-size limit (EFBIG)."""

    exit_code = 8


class Interrupted(CoditError):
    """SIGINT or SIGTERM stopped the run after its finished records were kept.

    Args:
        message: what was kept and how to resume.
        signum: the signal; the exit code is ``128 + signum`` (130 for SIGINT, 143 for SIGTERM).
    """

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.signum = signum
        self.exit_code = 128 + signum


def require(module: str, extra: str) -> None:
    """Fail with an install hint when an optional dependency is missing.

    Args:
        module: the importable module name, e.g. ``"ray"``.
        extra: the codit extra that provides it, e.g. ``"ray"``.
    """
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise MissingDependency(
            f"this needs the optional package {module!r}: pip install 'codit[{extra}]'"
        )
