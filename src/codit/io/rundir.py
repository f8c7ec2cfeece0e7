"""One run writing into an output: its lock, manifest, record writers, errors file and stops.

Every writing command goes through ``Run``::

    with Run(output, "generate", settings, config, options=options) as run:
        run.skip(bad_lines)                 # --skip-invalid: bad input -> the errors file
        todo = [p for p in prompts if p.id not in run.done_ids()]
        for record in work(todo):
            run.check_stop()                # after SIGINT/SIGTERM: raise Interrupted
            run.records.write(record)       # each id once, flushed, fsynced periodically
        run.finish(written=...)

Entering takes the output's lock (``codit.io.lock``), turns SIGINT/SIGTERM into stop requests
(``codit.io.signals``), checks the manifest's record-shaping settings (a stale manifest, whose
records are gone or empty, starts a fresh run with a notice), and adds this run's entry to the
manifest. Leaving closes (fsyncs) the writers, completes the run's entry (``complete``, or
``stopped`` with the signal or error) and releases the lock, whatever happened.

Resume rule, for every command: a record whose id is in the records file or in the errors file
is done; a rerun skips it (``--retry-errors`` where a command has it forgets the errors file).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from codit import __version__
from codit.config import to_dict
from codit.errors import CoditError, Interrupted
from codit.io import signals
from codit.io.atomic import write_json
from codit.io.invalid import Invalid, as_error_record
from codit.io.keyset import KeyUnion
from codit.io.lock import OutputLock
from codit.io.manifest import check_same_settings, is_stale, manifest_path, read_json
from codit.io.options import OutputOptions
from codit.io.records import RecordWriter, error_key

log = logging.getLogger(__name__)


def errors_path(output: Path) -> Path:
    """``out.jsonl`` -> ``out.errors.jsonl``."""
    return Path(output).with_suffix(".errors.jsonl")


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


class Run:
    """The files of one run into ``output``, held from ``__enter__`` to ``__exit__``.

    Args:
        output: the records file (or, for a run folder, the folder).
        command: the command's name, for the manifest and the lock file.
        settings: what shapes the records; a rerun must keep them.
        config: the whole config, recorded in the manifest.
        options: ``--skip-invalid`` and the fsync window.
        manifest: the manifest file (default ``out.manifest.json`` beside ``output``).
        errors: the errors file (default ``out.errors.jsonl``).
        records: the files whose emptiness makes the manifest stale (default: ``output``;
            () for a run folder, which is never stale).
        retry_errors: forget the errors file, so that its records are made again.
    """

    def __init__(
        self,
        output: Path,
        command: str,
        settings: dict[str, Any],
        config: Any = None,
        *,
        options: OutputOptions | None = None,
        manifest: Path | None = None,
        errors: Path | None = None,
        records: tuple[Path, ...] | None = None,
        retry_errors: bool = False,
    ):
        self.output = Path(output)
        self.command = command
        self.settings = settings
        self.options = options or OutputOptions()
        self.manifest_path = manifest or manifest_path(self.output)
        self.errors_path = errors or errors_path(self.output)
        self._records_files = (self.output,) if records is None else records
        self._config = to_dict(config) if config is not None else None
        self._lock = OutputLock(self.output, command)
        self._stack = contextlib.ExitStack()
        self._writers: dict[Path, RecordWriter] = {}
        self.manifest: dict[str, Any] = {}
        self.entry: dict[str, Any] = {}
        self.complete = False
        self._retry_errors = retry_errors
        self.entry_defaults: dict[str, Any] = {}

    # --- entering and leaving ---------------------------------------------------------------

    def __enter__(self) -> Run:
        self._lock.acquire()
        self._stack.callback(self._lock.release)
        try:
            self._stack.enter_context(signals.graceful_stop())
            previous = self._previous()
            check_same_settings(self.output, previous, self.settings)
            if self._retry_errors:
                self.errors_path.unlink(missing_ok=True)
            self._start(previous)
        except BaseException:
            self._stack.close()
            raise
        return self

    def _previous(self) -> dict[str, Any] | None:
        previous = read_json(self.manifest_path)
        if previous is not None and is_stale(self._records_files):
            names = ", ".join(str(p) for p in self._records_files)
            moved = ""
            if self.errors_path.is_file():
                os.replace(
                    self.errors_path, self.errors_path.with_name(self.errors_path.name + ".old")
                )
                moved = f"; its errors file is kept as {self.errors_path.name}.old"
            log.warning(
                "%s is gone or empty: starting a fresh run (the old manifest %s no longer "
                "applies%s)",
                names,
                self.manifest_path,
                moved,
            )
            return None
        return previous

    def _start(self, previous: dict[str, Any] | None) -> None:
        self.manifest = dict(previous or {})
        self.manifest.update(
            {
                "command": self.command,
                "codit_version": __version__,
                "settings": self.settings,
                "output": str(self.output),
                "errors": str(self.errors_path),
            }
        )
        if self._config is not None:
            self.manifest["config"] = self._config
        self.entry = {
            "started": now(),
            "codit_version": __version__,
            "pid": os.getpid(),
            **self.entry_defaults,
        }
        self.manifest["runs"] = [*self.manifest.get("runs", []), self.entry]
        self.write_manifest()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self._count()
            for writer in self._writers.values():
                writer.close()
            self.entry["ended"] = now()
            self.entry["complete"] = self.complete and error is None
            if isinstance(error, Interrupted):
                self.entry["stopped"] = f"signal {error.signum}"
            elif error is not None:
                self.entry["stopped"] = (
                    str(error) if isinstance(error, CoditError) else type(error).__name__
                )
            with contextlib.suppress(CoditError):  # a full disk must not hide the first error
                self.write_manifest()
        finally:
            self._stack.close()

    def _count(self) -> None:
        counts = self.manifest.setdefault("counts", {})
        for name, path in (("records", self.output), ("errors", self.errors_path)):
            if path in self._writers:
                counts[name] = len(self._writers[path].ids)

    # --- writing ----------------------------------------------------------------------------

    def writer(self, path: Path, key: Any = None) -> RecordWriter:
        """The append-only writer of ``path`` (one per file, closed when the run ends)."""
        path = Path(path)
        if path not in self._writers:
            extra = {} if key is None else {"key": key}
            self._writers[path] = RecordWriter(
                path,
                fsync_every=self.options.fsync_every,
                fsync_seconds=self.options.fsync_seconds,
                **extra,
            )
        return self._writers[path]

    @property
    def records(self) -> RecordWriter:
        """The writer of the records file."""
        return self.writer(self.output)

    @property
    def errors(self) -> RecordWriter:
        """The writer of the errors file (failed records and skipped bad input)."""
        return self.writer(self.errors_path, key=error_key)

    def done_ids(self) -> KeyUnion:
        """Ids a rerun skips: those in the records file and those in the errors file (a live
        view: an id written since is in it too)."""
        return KeyUnion(self.records.ids, self.errors.ids)  # no copy of either set

    def skip(self, bad: list[Invalid]) -> None:
        """Log skipped bad input lines (``--skip-invalid``) in the errors file, each once."""
        for b in bad:
            self.errors.write(as_error_record(b))
        if bad:
            log.warning("%d invalid input lines skipped; see %s", len(bad), self.errors_path)

    def write_manifest(self) -> Path:
        write_json(self.manifest_path, self.manifest)
        return self.manifest_path

    # --- stopping ---------------------------------------------------------------------------

    def stopping(self) -> bool:
        """Whether SIGINT/SIGTERM asked this run to stop (stop admitting work)."""
        return bool(signals.requested())

    def check_stop(self) -> None:
        """Raise ``Interrupted`` (with how to resume) if a stop was asked for."""
        signals.check(self.resume_hint())

    def resume_hint(self) -> str:
        kept = len(self._writers[self.output].ids) if self.output in self._writers else 0
        return f"{kept} records are kept in {self.output}; rerun the same command to resume"

    def finish(self, **outcome: Any) -> None:
        """Mark the run complete and record its counts in its manifest entry."""
        self.entry.update(outcome)
        self.complete = True
