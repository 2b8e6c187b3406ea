"""The new rows of the dataset's append-only cisTEM star, read from a byte offset.

The dataset star (``combined_stack.star``) holds every particle ever appended, row i ↔ stack
position i+1, and only grows (:mod:`live2d_tui.dataset.writer`). A streaming update needs the
rows of the particles that arrived since the last update: it reads from the byte offset where
the last one stopped (:class:`StarCursor`, kept in the block index), never the whole file. The
file may be growing while it is read; only complete lines are taken, and never past the stack
size the update was given.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from live2d_tui.formats.cistem_star import (
    COLUMNS,
    CistemStarError,
    StarRows,
    empty_rows,
    header_text,
    parse_star_text,
)

_HEADER = header_text()


@dataclass(frozen=True)
class StarCursor:
    """Where the next unread row of the dataset star starts."""

    offset: int
    """Byte offset just after the row of :attr:`position` (or of the header when it is 0)."""
    position: int
    """The last stack position read (0: none)."""

    def to_dict(self) -> dict[str, int]:
        return {"offset": self.offset, "position": self.position}

    @classmethod
    def from_dict(cls, data: dict[str, int]) -> StarCursor:
        return cls(int(data["offset"]), int(data["position"]))


def _is_data(line: bytes) -> bool:
    stripped = line.strip()
    if not stripped or stripped.startswith((b"#", b";", b"_")):
        return False
    return not (b"data_" in stripped or b"loop_" in stripped)


def cursor_after(path: Path, position: int) -> StarCursor:
    """The cursor just after the row of ``position`` (0: after the header); reads the file once.

    Raises:
        CistemStarError: The star has other columns than ours, or no row for ``position``.
    """
    data = Path(path).read_bytes()
    labels = [
        line.split()[0][1:].decode() for line in data.splitlines()[:200] if line.startswith(b"_")
    ]
    if labels != [c.label for c in COLUMNS]:
        raise CistemStarError(f"{path}: not the dataset's 22-column star")
    lines = data.splitlines(keepends=True)
    offset, first = 0, len(lines)
    for i, line in enumerate(lines):
        if _is_data(line):
            first = i
            break
        offset += len(line)
    if position == 0:
        return StarCursor(offset, 0)
    for line in lines[first:]:
        offset += len(line)
        if not line.endswith(b"\n"):
            break
        if _is_data(line) and int(line.split()[0]) == position:
            return StarCursor(offset, position)
    raise CistemStarError(f"{path}: no complete row for stack position {position}")


def read_new_rows(path: Path, cursor: StarCursor, nz: int) -> tuple[StarRows, StarCursor]:
    """The complete rows after ``cursor`` with positions ≤ ``nz``, and the cursor after them.

    Raises:
        CistemStarError: The rows after the cursor do not continue its positions one by one (the
            star is not the one the cursor was made for).
    """
    with open(path, "rb") as handle:
        handle.seek(cursor.offset)
        chunk = handle.read()
    end = chunk.rfind(b"\n") + 1
    lines = chunk[:end].splitlines(keepends=True)
    taken: list[bytes] = []
    used = 0
    expected = cursor.position + 1
    for line in lines:
        if not _is_data(line):
            used += len(line)
            continue
        if expected > nz:
            break
        position = int(line.split()[0])
        if position != expected:
            raise CistemStarError(
                f"{path}: the row after stack position {cursor.position} is {position} "
                f"(offset {cursor.offset}); the star does not continue where it was left"
            )
        taken.append(line)
        used += len(line)
        expected += 1
    if not taken:
        return empty_rows(0), cursor
    rows = parse_star_text(_HEADER + b"".join(taken).decode("utf-8"), str(path))
    last = int(rows["position"][-1])
    if not np.array_equal(rows["position"], np.arange(cursor.position + 1, last + 1)):
        raise CistemStarError(f"{path}: rows after position {cursor.position} are not in order")
    return rows, StarCursor(cursor.offset + used, last)
