"""One writer per output: an exclusive lock file beside it (``OUT.lock``).

The lock file holds the owner's pid, host, start time and command. Taking it:

1. ``open(O_CREAT)`` the lock file and ``flock(LOCK_EX | LOCK_NB)`` it. The kernel drops a
   flock when its process dies (SIGKILL, OOM, a crash), so a lock file whose flock is free was
   left by a dead run: it is taken over with a notice. A held flock means a live run: refused
   with ``OutputLocked`` naming its pid and host. The lock file's inode is checked after the
   flock, so a release (unlink) racing with an acquire cannot let two runs in.
2. Where the filesystem has no flock (some network filesystems answer ENOLCK), the lock file is
   created with ``O_CREAT | O_EXCL`` instead, and a lock file that exists is stale only if it
   names this host and a pid that is not running. A lock from another host cannot be checked:
   it is refused, and the message says which file to delete once that run is known to be gone.

On NFS (v4, or v3 with a lock manager) flock is forwarded to the server as a POSIX lock, so two
hosts exclude each other; a host that loses power keeps the lock until the server's lease runs
out (about 90 s), after which the next run takes it over. NFS gives no guarantee to clients that
mount with ``nolock`` or ``local_lock=all``: there the lock excludes runs on one host only.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from codit.errors import OutputLocked

try:
    import fcntl
except ImportError:  # not POSIX: O_EXCL only
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

NO_FLOCK = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL)


def lock_path(output: Path) -> Path:
    """``data/out.jsonl`` -> ``data/out.jsonl.lock``; a run folder ``out/`` -> ``out.lock``."""
    output = Path(output)
    return output.with_name(output.name + ".lock")


def owner(command: str) -> dict[str, Any]:
    """What a lock file says about its holder."""
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": command,
    }


def read_owner(path: Path) -> dict[str, Any]:
    """The holder a lock file names ({} when it is empty or unreadable)."""
    try:
        value = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def _refuse(
    output: Path, path: Path, holder: dict[str, Any], other_host: bool = False
) -> OutputLocked:
    who = f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}"
    since = f", running since {holder['started']}" if holder.get("started") else ""
    tail = (
        f"; if that run is gone, delete {path}"
        if other_host
        else "; wait for it to finish, stop it, or write to another output"
    )
    return OutputLocked(f"{output} is being written by another run ({who}{since}){tail}")


class OutputLock:
    """The exclusive lock of one output, held from ``acquire`` to ``release``.

    Args:
        output: the output file or folder the lock protects.
        command: the command that takes it, for the lock file and the refusal message.
    """

    def __init__(self, output: Path, command: str = "codit"):
        self.output = Path(output)
        self.path = lock_path(self.output)
        self.command = command
        self._fd = -1

    def acquire(self) -> None:
        """Take the lock, taking over one left by a dead run.

        Raises:
            OutputLocked: a live run holds it.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if fcntl is not None:
            with contextlib.suppress(_NoFlock):
                self._acquire_flock()
                return
        self._acquire_exclusive()

    def _acquire_flock(self) -> None:
        for _ in range(10):  # another run released (unlinked) between our open and flock
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as err:
                os.close(fd)
                if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise _refuse(self.output, self.path, read_owner(self.path)) from None
                if err.errno in NO_FLOCK:
                    raise _NoFlock from None
                raise
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if not same:
                os.close(fd)
                continue
            self._take(fd)
            return
        raise _refuse(self.output, self.path, read_owner(self.path))

    def _acquire_exclusive(self) -> None:
        for _ in range(10):
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                holder = read_owner(self.path)
                if not holder:  # being written this instant, or torn by a crash
                    if time.time() - self.path.stat().st_mtime < 10:
                        raise _refuse(self.output, self.path, holder) from None
                elif holder.get("host") != socket.gethostname():
                    raise _refuse(self.output, self.path, holder, other_host=True) from None
                elif pid_alive(int(holder.get("pid", -1))):
                    raise _refuse(self.output, self.path, holder) from None
                self._notice_takeover(holder)
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.path)
                continue
            self._take(fd, fresh=True)
            return
        raise _refuse(self.output, self.path, read_owner(self.path))

    def _take(self, fd: int, fresh: bool = False) -> None:
        if not fresh:
            holder = read_owner(self.path)
            if holder:
                self._notice_takeover(holder)
        data = json.dumps(owner(self.command)).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, data + b"\n", 0)
        os.fsync(fd)
        self._fd = fd

    def _notice_takeover(self, holder: dict[str, Any]) -> None:
        log.warning(
            "%s: taking over the lock left by pid %s on %s (started %s), which is no longer running",
            self.output,
            holder.get("pid", "?"),
            holder.get("host", "?"),
            holder.get("started", "?"),
        )

    def release(self) -> None:
        """Remove the lock file and drop the lock (unlink first, so no one takes a dead file)."""
        if self._fd < 0:
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        os.close(self._fd)
        self._fd = -1

    def __enter__(self) -> OutputLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class _NoFlock(Exception):
    """This filesystem has no flock."""


@contextlib.contextmanager
def locked(output: Path, command: str = "codit") -> Iterator[OutputLock]:
    """``with locked(output): ...`` holds the output's lock for the block."""
    with OutputLock(output, command) as lock:
        yield lock
