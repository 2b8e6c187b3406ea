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


def parse_warp_star(data: bytes, source: str) -> WarpTable:
    """Parse and validate a complete Warp particle star.

    Raises:
        WarpFileError: not UTF-8, no final newline, no ``loop_``, a missing required column, a
            short or long row, a non-number, or a bad ``rlnImageName`` (names ``source``).
    """
    if not data.endswith(b"\n"):
        raise WarpFileError(f"{source}: no final newline (file is being written)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WarpFileError(f"{source}: not a text star file ({exc})") from None
    lines = text.split("\n")
    i = 0
    while i < len(lines) and not lines[i].strip().startswith("loop_"):
        i += 1
    if i >= len(lines):
        raise WarpFileError(f"{source}: no loop_ table")
    i += 1
    labels: list[str] = []
    while i < len(lines):
        stripped = lines[i].strip()
        if not stripped or stripped.startswith("#"):
            i += 1
            continue
        if not stripped.startswith("_"):
            break
        labels.append(stripped.split()[0][1:])
        i += 1
    for name in REQUIRED:
        if name not in labels:
            raise WarpFileError(f"{source}: required column _{name} is missing")
    ncol = len(labels)
    start = i
    fields: list[list[str]] = []
    for lineno in range(start, len(lines)):
        row = lines[lineno].split()
        if not row:
            continue
        if len(row) != ncol:
            raise WarpFileError(
                f"{source}: line {lineno + 1} has {len(row)} fields, expected {ncol}"
            )
        fields.append(row)
    return _group(fields, labels, source)


def _group(fields: list[list[str]], labels: list[str], source: str) -> WarpTable:
    n = len(fields)
    position = {label: j for j, label in enumerate(labels)}
    values = np.empty((n, len(CTF_COLUMNS)), dtype=np.float64)
    columns = list(zip(*fields, strict=True)) if n else [() for _ in labels]
    for k, (name, default) in enumerate(CTF_COLUMNS):
        j = position.get(name)
        if j is None:
            values[:, k] = default
            continue
        try:
            values[:, k] = np.asarray(columns[j], dtype=np.float64)
        except ValueError as exc:
            raise WarpFileError(f"{source}: column _{name} has a non-number ({exc})") from None
    names = columns[position["rlnImageName"]]
    mic_col = position.get("rlnMicrographName")
    groups: dict[str, list[int]] = {}
    slice_numbers = np.empty(n, dtype=np.int64)
    for r, image in enumerate(names):
        number, sep, stack = image.partition("@")
        if not sep or not stack:
            raise WarpFileError(f"{source}: rlnImageName {image!r} is not N@stack")
        try:
            slice_numbers[r] = int(number)
        except ValueError:
            raise WarpFileError(f"{source}: rlnImageName {image!r} has no slice number") from None
        groups.setdefault(stack, []).append(r)
    if n and slice_numbers.min() < 1:
        raise WarpFileError(f"{source}: rlnImageName slice numbers start at 1")
    micrographs: dict[str, MicrographRows] = {}
    for stack, rows in groups.items():
        idx = np.asarray(rows, dtype=np.int64)
        micrographs[stack] = MicrographRows(
            stack=stack,
            micrograph=columns[mic_col][rows[0]] if mic_col is not None else "",
            indices=slice_numbers[idx],
            values=values[idx],
        )
    return WarpTable(micrographs=micrographs, rows=n)


def source_star_path(folder: Path, kind: str, model: str) -> Path:
    """The exact table name, e.g. ``goodparticles_<Model>.star`` (never a ``_last10000_`` file)."""
    return Path(folder) / f"{kind}_{model}.star"
