"""One supervisor per output folder: an exclusive lock that names its holder.

The lock is ``<output folder>/.live2d.lock``, held with ``fcntl.flock`` on an open descriptor, so
the kernel releases it when the holder exits for any reason (crash, SIGKILL): a stale lock file
never blocks a restart. The file's content (written after the lock is taken) names the holder —
user, host, pid, start time — so a second supervisor can say who has the folder.

``flock`` locks belong to the open file description, so a second :class:`OutputLock` on the same
folder conflicts even inside one process (tests rely on that).
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import json
import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Self

from live2d_tui.atomic import NEW_FILE_MODE

LOCK_NAME = ".live2d.lock"


@dataclass(frozen=True, slots=True)
class LockHolder:
    """Who holds an output folder."""

    user: str
    host: str
    pid: int
    since: str

    def describe(self) -> str:
        """``user@host (pid N, since T)``."""
        return f"{self.user}@{self.host} (pid {self.pid}, since {self.since})"


class LockHeldError(RuntimeError):
    """Another supervisor holds the output folder."""

    def __init__(self, folder: Path, holder: LockHolder | None) -> None:
        who = holder.describe() if holder else "another live2d process (holder unknown)"
        super().__init__(
            f"output folder {folder} is in use by {who}; stop that live2d first, "
            "or choose another output folder with --out"
        )
        self.folder = folder
        self.holder = holder


def _current_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry in some containers
        return str(os.getuid())


def read_holder(folder: Path) -> LockHolder | None:
    """The holder named in the lock file (it may be stale if nobody holds the lock)."""
    try:
        data = json.loads((folder / LOCK_NAME).read_text(encoding="utf-8"))
        return LockHolder(
            str(data["user"]), str(data["host"]), int(data["pid"]), str(data["since"])
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


class OutputLock:
    """The exclusive lock of one output folder (use :meth:`acquire` / :meth:`release`)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock without waiting.

        Raises:
            LockHeldError: another process (or another lock object) holds it.
            OSError: the folder cannot be created or the file cannot be opened.
        """
        if self._fd is not None:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, NEW_FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise LockHeldError(self.folder, read_holder(self.folder)) from None
        except OSError:
            os.close(fd)
            raise
        self._fd = fd
        holder = {
            "user": _current_user(),
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "since": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        # The content is informative only; a full disk must not stop us from holding the lock.
        with contextlib.suppress(OSError):
            data = (json.dumps(holder) + "\n").encode()
            os.ftruncate(fd, 0)
            os.pwrite(fd, data, 0)

    def release(self) -> None:
        """Give the lock up (idempotent)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    def __enter__(self) -> Self:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
