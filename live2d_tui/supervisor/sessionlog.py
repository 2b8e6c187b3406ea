"""The session log ``live2d.log`` in the output folder: one timestamped line per summary.

Per-run program output lives in ``cycles/cycle_<N>/``; this log holds what a person scanning the
night wants: ingests, triggers, cycle summaries, errors. The UI shows its last lines.

Invariants: a write never raises (a full disk or a vanished folder must not stop the supervisor;
the failure is remembered in :attr:`SessionLog.last_error`), lines are appended whole (one
``write`` per line on an ``O_APPEND`` descriptor), and the file is rotated to ``live2d.log.1``
once it exceeds :data:`MAX_BYTES`, so a long session cannot fill the disk with log.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections import deque
from datetime import datetime
from pathlib import Path

from live2d_tui.atomic import NEW_FILE_MODE

LOG_NAME = "live2d.log"
MAX_BYTES = 20 * 1024 * 1024
"""Rotate beyond this size (20 MB is months of summaries; per-run logs live elsewhere)."""


class SessionLog:
    """Append-only, thread-safe writer of ``live2d.log``."""

    def __init__(self, folder: Path) -> None:
        self.path = Path(folder) / LOG_NAME
        self.last_error: str = ""
        self._lock = threading.Lock()

    def write(self, text: str, level: str = "info") -> str:
        """Append ``text`` (one or more lines) with a timestamp; return the formatted line."""
        stamp = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S")
        tag = "" if level == "info" else f"{level.upper()}: "
        lines = [f"{stamp} {tag}{line}" for line in (text.splitlines() or [""])]
        formatted = "\n".join(lines)
        data = (formatted + "\n").encode("utf-8", errors="replace")
        with self._lock:
            try:
                self._rotate_if_large()
                fd = os.open(
                    self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, NEW_FILE_MODE
                )
                try:
                    os.write(fd, data)
                finally:
                    os.close(fd)
                self.last_error = ""
            except OSError as exc:
                self.last_error = f"cannot write {self.path}: {exc.strerror or exc}"
        return formatted

    def _rotate_if_large(self) -> None:
        with contextlib.suppress(OSError):
            if self.path.stat().st_size > MAX_BYTES:
                self.path.replace(self.path.with_name(LOG_NAME + ".1"))

    def tail(self, count: int = 1000) -> list[str]:
        """The last ``count`` lines (fewer if the log is shorter; none if it is missing)."""
        try:
            with self.path.open("r", encoding="utf-8", errors="replace") as handle:
                return [line.rstrip("\n") for line in deque(handle, maxlen=count)]
        except OSError:
            return []
