"""cisTEM's binary parameter file (the ``.cistem`` extension), read and written.

refine2d reads answer #2 as binary when its name ends in ``.cistem`` (cisTEM's GUI writes its
inputs that way; docs/protocol.md#the-binary-cistem-parameter-file). The layout, all native
little-endian:

- int32 number of columns, int32 number of lines;
- per column: an int64 identifier (one bit of cisTEM's parameter mask, e.g. 1 = position in
  stack, 4 = psi, 134217728 = best 2D class) and a uint8 type code;
- per line, each column's value in that order: int32 (codes 2 integer, 9 unsigned integer),
  float32 (3), int64 (5), float64 (6), one byte (4 bool, 7 char), or an int32 length and that
  many bytes (1 text, 8 variable length).

Columns this program does not use are skipped by their type code, as cisTEM skips columns it
does not know. The phase shift is held in **radians** there (cisTEM keeps it in radians in
memory; its text files hold degrees), and is converted to and from the degrees of
:class:`~live2d_tui.formats.cistem_star.StarRows`.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import numpy as np

from live2d_tui.atomic import atomic_writer
from live2d_tui.formats.cistem_star import (
    COLUMNS,
    CistemStarError,
    StarRows,
    empty_rows,
)

FIXED_TYPES: dict[int, np.dtype[Any]] = {
    2: np.dtype("<i4"),
    9: np.dtype("<u4"),
    3: np.dtype("<f4"),
    5: np.dtype("<i8"),
    6: np.dtype("<f8"),
    4: np.dtype("u1"),
    7: np.dtype("i1"),
}
"""The value of each fixed-size type code."""
VARIABLE_TYPES = (1, 8)
"""Type codes stored as an int32 length and that many bytes."""

IDENTIFIERS: dict[str, tuple[int, int]] = {
    "position": (1, 9),
    "psi": (4, 3),
    "x_shift": (8, 3),
    "y_shift": (16, 3),
    "defocus_1": (32, 3),
    "defocus_2": (64, 3),
    "defocus_angle": (128, 3),
    "phase_shift": (256, 3),
    "occupancy": (512, 3),
    "logp": (1024, 3),
    "sigma": (2048, 3),
    "score": (4096, 3),
    "score_change": (8192, 3),
    "pixel_size": (16384, 3),
    "voltage": (32768, 3),
    "cs": (65536, 3),
    "amplitude_contrast": (131072, 3),
    "beam_tilt_x": (262144, 3),
    "beam_tilt_y": (524288, 3),
    "image_shift_x": (1048576, 3),
    "image_shift_y": (2097152, 3),
    "best_class": (134217728, 2),
}
"""Our star field → (cisTEM's column identifier, the type code cisTEM writes it with)."""
_BY_IDENTIFIER = {ident: name for name, (ident, _) in IDENTIFIERS.items()}


def is_binary_star(path: str | Path) -> bool:
    """cisTEM's rule: a name ending in ``.cistem`` is a binary parameter file."""
    return str(path).endswith(".cistem")


def read_binary_star(path: Path) -> StarRows:
    """Read a binary ``.cistem`` file into star rows (columns it lacks keep cisTEM's defaults).

    Raises:
        CistemStarError: The file is truncated, too long, or has an unknown type code.
    """
    path = Path(path)
    data = path.read_bytes()
    if len(data) < 8:
        raise CistemStarError(f"{path}: {len(data)} bytes, too short for a binary cisTEM star")
    columns, lines = struct.unpack_from("<ii", data, 0)
    if columns < 1 or lines < 0:
        raise CistemStarError(f"{path}: {columns} columns and {lines} lines in the header")
    offset = 8
    header_end = offset + 9 * columns
    if len(data) < header_end:
        raise CistemStarError(f"{path}: cut inside its {columns} column descriptions")
    layout: list[tuple[int, int]] = []
    for _ in range(columns):
        identifier, code = struct.unpack_from("<qB", data, offset)
        offset += 9
        if code not in FIXED_TYPES and code not in VARIABLE_TYPES:
            raise CistemStarError(f"{path}: column {identifier} has unknown type code {code}")
        layout.append((identifier, code))
    rows = empty_rows(lines)
    if any(code in VARIABLE_TYPES for _, code in layout):
        values, offset = _read_variable(data, offset, layout, lines, path)
    else:
        values, offset = _read_fixed(data, offset, layout, lines, path)
    if offset != len(data):
        raise CistemStarError(f"{path}: {len(data) - offset} bytes after the last of {lines} lines")
    for identifier, column in values.items():
        name = _BY_IDENTIFIER.get(identifier)
        if name is not None:
            rows[name] = np.rint(column) if rows.dtype[name].kind == "i" else column
    if 256 in values:
        rows["phase_shift"] = np.rad2deg(values[256])
    return rows


def _read_fixed(
    data: bytes, offset: int, layout: list[tuple[int, int]], lines: int, path: Path
) -> tuple[dict[int, np.ndarray], int]:
    """All columns fixed-size: one structured view of the whole table."""
    dtype = np.dtype([(f"c{i}", FIXED_TYPES[code]) for i, (_, code) in enumerate(layout)])
    end = offset + dtype.itemsize * lines
    if len(data) < end:
        raise CistemStarError(
            f"{path}: cut short: {lines} lines of {dtype.itemsize} bytes need {end} bytes, "
            f"the file has {len(data)}"
        )
    table = np.frombuffer(data, dtype=dtype, count=lines, offset=offset)
    values = {ident: table[f"c{i}"].astype(np.float64) for i, (ident, _) in enumerate(layout)}
    return values, end


def _read_variable(
    data: bytes, offset: int, layout: list[tuple[int, int]], lines: int, path: Path
) -> tuple[dict[int, np.ndarray], int]:
    """Some columns hold strings: walk the lines."""
    values = {ident: np.zeros(lines) for ident, code in layout if code not in VARIABLE_TYPES}
    try:
        for line in range(lines):
            for identifier, code in layout:
                if code in VARIABLE_TYPES:
                    (length,) = struct.unpack_from("<i", data, offset)
                    if length < 0 or offset + 4 + length > len(data):
                        raise struct.error("string past the end")
                    offset += 4 + length
                else:
                    kind = FIXED_TYPES[code]
                    values[identifier][line] = np.frombuffer(data, kind, 1, offset)[0]
                    offset += kind.itemsize
    except (struct.error, ValueError):
        raise CistemStarError(f"{path}: cut short inside line {line + 1} of {lines}") from None
    return values, offset


def write_binary_star(path: Path, rows: StarRows) -> None:
    """Write rows as a binary ``.cistem`` file (our 22 columns, atomically)."""
    names = [c.name for c in COLUMNS]
    header = struct.pack("<ii", len(names), len(rows))
    header += b"".join(struct.pack("<qB", *IDENTIFIERS[name]) for name in names)
    dtype = np.dtype([(name, FIXED_TYPES[IDENTIFIERS[name][1]]) for name in names])
    table = np.zeros(len(rows), dtype=dtype)
    for name in names:
        column = rows[name]
        table[name] = np.deg2rad(column) if name == "phase_shift" else column
    with atomic_writer(Path(path), "wb", encoding=None) as handle:
        handle.write(header)
        handle.write(table.tobytes())
