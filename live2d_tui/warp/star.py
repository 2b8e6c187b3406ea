"""Warp's particle tables (``goodparticles_<Model>.star`` / ``allparticles_<Model>.star``).

Warp writes RELION 3.0-style tables with an empty block name and no optics table
(../shared/reference/warp-formats.md §4). Columns are found **by name** (Warp keeps a loaded
table's column order). A snapshot is accepted only when it is complete: the required columns are
present, every data row has every field, and the file ends with a newline (common star parsers
silently return a truncated last row; we reject the whole snapshot instead).

The table is grouped by particle stack (one group per micrograph), preserving first appearance
order, because every later decision (new, unchanged, reprocessed, gone) is per micrograph.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from live2d_tui.warp.xmlutil import WarpFileError

REQUIRED = ("rlnImageName", "rlnDefocusU", "rlnDefocusV", "rlnDefocusAngle")
"""Columns without which a snapshot is rejected."""

CTF_COLUMNS: tuple[tuple[str, float], ...] = (
    ("rlnDefocusU", np.nan),
    ("rlnDefocusV", np.nan),
    ("rlnDefocusAngle", 0.0),
    ("rlnPhaseShift", 0.0),
    ("rlnDetectorPixelSize", np.nan),
    ("rlnVoltage", np.nan),
    ("rlnSphericalAberration", np.nan),
    ("rlnAmplitudeContrast", np.nan),
    ("rlnCoordinateX", 0.0),
    ("rlnCoordinateY", 0.0),
)
"""Numeric columns kept per particle, in the order of :attr:`MicrographRows.values`, with the
value used when Warp's table lacks the column (NaN: filled from ``previous.settings``)."""

VALUE_INDEX = {name: i for i, (name, _) in enumerate(CTF_COLUMNS)}


@dataclass(frozen=True, slots=True)
class MicrographRows:
    """One micrograph's rows of a Warp particle table, in table order."""

    stack: str
    """Stack path as written in ``rlnImageName`` (relative to the star's folder)."""
    micrograph: str
    """``rlnMicrographName`` of the first row (the movie file name), '' if absent."""
    indices: npt.NDArray[np.int64]
    """1-based slice numbers in the stack, one per row."""
    values: npt.NDArray[np.float64]
    """(rows, len(CTF_COLUMNS)) numeric columns, see :data:`CTF_COLUMNS`."""

    @property
    def count(self) -> int:
        """Rows (particles) of this micrograph."""
        return int(self.indices.shape[0])


@dataclass(frozen=True, slots=True)
class WarpTable:
    """A validated snapshot of a Warp particle table."""

    micrographs: dict[str, MicrographRows]
    """Stack path → rows, in order of first appearance."""
    rows: int


CHUNK_BYTES = 4 << 20
"""Rows are parsed in chunks of about this many bytes, so memory stays near the file size plus
compact numeric arrays (half a million rows must not cost gigabytes of Python strings)."""


def parse_warp_star(data: bytes, source: str) -> WarpTable:
    """Parse and validate a complete Warp particle star.

    Raises:
        WarpFileError: not UTF-8, no final newline, no ``loop_``, a missing required column, a
            short or long row, a non-number, or a bad ``rlnImageName`` (names ``source``).
    """
    if not data.endswith(b"\n"):
        raise WarpFileError(f"{source}: no final newline (file is being written)")
    labels, start, first_line = _header(data, source)
    parser = _RowParser(labels, source, capacity=data.count(b"\n", start))
    pos, lineno = start, first_line
    while pos < len(data):
        end = data.rfind(b"\n", pos, pos + CHUNK_BYTES) if pos + CHUNK_BYTES < len(data) else -1
        end = len(data) if end < 0 else end + 1
        try:
            text = data[pos:end].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise WarpFileError(f"{source}: not a text star file ({exc})") from None
        lineno = parser.feed(text, lineno)
        pos = end
    return parser.table()


def _header(data: bytes, source: str) -> tuple[list[str], int, int]:
    """Labels, byte offset of the first data line and the number of lines before it."""
    pos, lineno, in_loop = 0, 0, False
    labels: list[str] = []
    while pos < len(data):
        end = data.find(b"\n", pos)
        end = len(data) if end < 0 else end + 1
        try:
            stripped = data[pos:end].decode("utf-8").strip()
        except UnicodeDecodeError as exc:
            raise WarpFileError(f"{source}: not a text star file ({exc})") from None
        lineno += 1
        if not in_loop:
            in_loop = stripped.startswith("loop_")
        elif stripped.startswith("_"):
            labels.append(stripped.split()[0][1:])
        elif stripped and not stripped.startswith("#"):
            lineno -= 1  # this line is the first row: count lines before it
            break
        pos = end
    else:
        if not in_loop:
            raise WarpFileError(f"{source}: no loop_ table")
    for name in REQUIRED:
        if name not in labels:
            raise WarpFileError(f"{source}: required column _{name} is missing")
    return labels, pos, lineno


class _RowParser:
    """Accumulates rows chunk by chunk into compact arrays."""

    def __init__(self, labels: list[str], source: str, capacity: int) -> None:
        self.source = source
        self.ncol = len(labels)
        position = {label: j for j, label in enumerate(labels)}
        self.numeric = [
            (k, position.get(name), default) for k, (name, default) in enumerate(CTF_COLUMNS)
        ]
        self.image_col = position["rlnImageName"]
        self.mic_col = position.get("rlnMicrographName")
        # Preallocated for every line after the header (an upper bound on rows): no copies.
        self.values = np.empty((capacity, len(CTF_COLUMNS)), dtype=np.float64)
        self.slices = np.empty(capacity, dtype=np.int64)
        self.ids = np.empty(capacity, dtype=np.int64)
        self.n = 0
        self.stacks: dict[str, int] = {}
        self.micrograph_of: list[str] = []

    def feed(self, text: str, lineno: int) -> int:
        rows: list[list[str]] = []
        for line in text.split("\n"):
            lineno += 1
            row = line.split()
            if not row:
                continue
            if len(row) != self.ncol:
                raise WarpFileError(
                    f"{self.source}: line {lineno} has {len(row)} fields, expected {self.ncol}"
                )
            rows.append(row)
        lineno -= 1  # the text ends with a newline: its last "line" is empty
        if not rows:
            return lineno
        columns = list(zip(*rows, strict=True))
        a, b = self.n, self.n + len(rows)
        values = self.values[a:b]
        for k, j, default in self.numeric:
            if j is None:
                values[:, k] = default
                continue
            try:
                values[:, k] = np.asarray(columns[j], dtype=np.float64)
            except ValueError as exc:
                name = CTF_COLUMNS[k][0]
                raise WarpFileError(
                    f"{self.source}: column _{name} has a non-number ({exc})"
                ) from None
        slices = self.slices[a:b]
        ids = self.ids[a:b]
        stacks = self.stacks
        for r, image in enumerate(columns[self.image_col]):
            number, sep, stack = image.partition("@")
            if not sep or not stack or not number.isdigit() or int(number) < 1:
                raise WarpFileError(f"{self.source}: rlnImageName {image!r} is not N@stack")
            slices[r] = int(number)
            sid = stacks.get(stack)
            if sid is None:
                sid = stacks[stack] = len(stacks)
                mic = columns[self.mic_col][r] if self.mic_col is not None else ""
                self.micrograph_of.append(mic)
            ids[r] = sid
        self.n = b
        return lineno

    def table(self) -> WarpTable:
        """Group rows by stack. Rows are sorted by stack once (skipped when, as usual, each
        micrograph's rows are already contiguous and in first-appearance order), so every
        micrograph's arrays are views, not copies."""
        n = self.n
        values, slices, ids = self.values[:n], self.slices[:n], self.ids[:n]
        if n and bool((np.diff(ids) < 0).any()):
            order = np.argsort(ids, kind="stable")
            values, slices, ids = values[order], slices[order], ids[order]
        counts = np.bincount(ids, minlength=len(self.stacks))
        bounds = np.concatenate(([0], np.cumsum(counts))).tolist()
        micrographs: dict[str, MicrographRows] = {}
        for stack, sid in self.stacks.items():
            lo, hi = bounds[sid], bounds[sid + 1]
            micrographs[stack] = MicrographRows(
                stack=stack,
                micrograph=self.micrograph_of[sid],
                indices=slices[lo:hi],
                values=values[lo:hi],
            )
        return WarpTable(micrographs=micrographs, rows=n)


def source_star_path(folder: Path, kind: str, model: str) -> Path:
    """The exact table name, e.g. ``goodparticles_<Model>.star`` (never a ``_last10000_`` file)."""
    return Path(folder) / f"{kind}_{model}.star"
