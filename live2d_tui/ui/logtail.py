"""Follow the session log (``<output>/live2d.log``): the last N lines, then what is appended.

Files are the truth: the Job Output view shows what the log file holds (including engine output
the supervisor writes there), not a second copy kept in memory by the core.

Invariants:
- The first read costs O(N lines), not O(file): it reads backwards in blocks from the end.
- Later reads return only complete new lines (a partial last line waits for its newline).
- A truncated or replaced file (size shrank, inode changed) restarts from its tail.
- Pure file I/O without Textual; the UI calls :meth:`LogTail.read_new` from a thread worker.
"""

from __future__ import annotations

import os
from pathlib import Path

BLOCK = 64 * 1024


def tail_lines(path: Path, count: int) -> tuple[list[str], int]:
    """The last ``count`` complete lines of ``path`` and the offset after the last newline."""
    with path.open("rb") as fh:
        end = fh.seek(0, os.SEEK_END)
        data = b""
        pos = end
        while pos > 0 and data.count(b"\n") <= count:
            step = min(BLOCK, pos)
            pos -= step
            fh.seek(pos)
            data = fh.read(step) + data
    cut = data.rfind(b"\n")
    if cut < 0:
        return [], end - len(data)
    complete = data[: cut + 1]
    offset = end - len(data) + cut + 1
    lines = complete.decode("utf-8", errors="replace").splitlines()
    return lines[-count:], offset


class LogTail:
    """Incremental reader of one log file."""

    def __init__(self, path: Path, *, max_lines: int = 1000) -> None:
        self.path = path
        self.max_lines = max_lines
        self._offset: int | None = None
        self._inode: int | None = None

    def read_new(self) -> tuple[list[str], bool]:
        """New complete lines since the last call, and whether the view must be cleared first.

        The first call (and a call after truncation/replacement) returns the last
        ``max_lines`` lines with ``reset=True``. A missing file returns ``([], False)``.
        """
        try:
            st = self.path.stat()
        except OSError:
            return [], False
        reset = self._offset is None or st.st_ino != self._inode or st.st_size < (self._offset or 0)
        if reset:
            lines, self._offset = tail_lines(self.path, self.max_lines)
            self._inode = st.st_ino
            return lines, True
        assert self._offset is not None
        if st.st_size == self._offset:
            return [], False
        with self.path.open("rb") as fh:
            fh.seek(self._offset)
            data = fh.read(st.st_size - self._offset)
        cut = data.rfind(b"\n")
        if cut < 0:
            return [], False
        self._offset += cut + 1
        lines = data[: cut + 1].decode("utf-8", errors="replace").splitlines()
        return lines[-self.max_lines :], False
