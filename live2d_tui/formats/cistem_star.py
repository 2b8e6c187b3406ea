"""cisTEM's 22-column text star: the one reader and writer every part of the program uses.

The column set, order and printf formats are exactly what ``refine2d`` writes
(``cisTEMParameters::WriteTocisTEMStarFile``; docs/protocol.md#the-cistem-star-file), because
refine2d output rows are joined under our headers and read back by cisTEM. Rows are held as a
numpy structured array (:data:`DTYPE`), so half a million particles cost a few tens of MB.

Rules the format forces on us (docs/protocol.md#the-cistem-star-file: the reader's rules and the
phase shift):
- a label is recognised only when followed by a space, so labels are written ``_label #n``;
- cisTEM's reader stops at the first empty line: never write a blank line between rows;
- ``_cisTEMPhaseShift`` is in **degrees** in every file we write (refine2d writes it back in
  radians; the cycle runner therefore always takes CTF columns from the dataset);
- ``data_`` / ``loop_`` must not appear in comment lines before the real block.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from live2d_tui.atomic import atomic_writer


@dataclass(frozen=True, slots=True)
class Column:
    """One cisTEM star column."""

    label: str
    """Label without the leading underscore, e.g. ``cisTEMPositionInStack``."""
    name: str
    """Field name in :data:`DTYPE`."""
    fmt: str
    """printf format refine2d uses."""
    dtype: str
    default: float


COLUMNS: tuple[Column, ...] = (
    Column("cisTEMPositionInStack", "position", "%8d", "i8", 0),
    Column("cisTEMAnglePsi", "psi", "%7.2f", "f8", 0.0),
    Column("cisTEMXShift", "x_shift", "%9.2f", "f8", 0.0),
    Column("cisTEMYShift", "y_shift", "%9.2f", "f8", 0.0),
    Column("cisTEMDefocus1", "defocus_1", "%8.1f", "f8", 0.0),
    Column("cisTEMDefocus2", "defocus_2", "%8.1f", "f8", 0.0),
    Column("cisTEMDefocusAngle", "defocus_angle", "%7.2f", "f8", 0.0),
    Column("cisTEMPhaseShift", "phase_shift", "%7.2f", "f8", 0.0),
    Column("cisTEMOccupancy", "occupancy", "%7.2f", "f8", 100.0),
    Column("cisTEMLogP", "logp", "%9d", "i8", 0),
    Column("cisTEMSigma", "sigma", "%10.4f", "f8", 10.0),
    Column("cisTEMScore", "score", "%7.2f", "f8", 0.0),
    Column("cisTEMScoreChange", "score_change", "%7.2f", "f8", 0.0),
    Column("cisTEMPixelSize", "pixel_size", "%8.5f", "f8", 0.0),
    Column("cisTEMMicroscopeVoltagekV", "voltage", "%7.2f", "f8", 0.0),
    Column("cisTEMMicroscopeCsMM", "cs", "%7.2f", "f8", 2.7),
    Column("cisTEMAmplitudeContrast", "amplitude_contrast", "%7.4f", "f8", 0.07),
    Column("cisTEMBeamTiltX", "beam_tilt_x", "%7.3f", "f8", 0.0),
    Column("cisTEMBeamTiltY", "beam_tilt_y", "%7.3f", "f8", 0.0),
    Column("cisTEMImageShiftX", "image_shift_x", "%7.3f", "f8", 0.0),
    Column("cisTEMImageShiftY", "image_shift_y", "%7.3f", "f8", 0.0),
    Column("cisTEMBest2DClass", "best_class", "%5d", "i8", 0),
)

DTYPE = np.dtype([(c.name, c.dtype) for c in COLUMNS])
"""Structured dtype of star rows, one field per column, in cisTEM's order."""

CTF_FIELDS: tuple[str, ...] = (
    "defocus_1",
    "defocus_2",
    "defocus_angle",
    "phase_shift",
    "pixel_size",
    "voltage",
    "cs",
    "amplitude_contrast",
)
"""Columns that describe the particle's image formation; always taken from the dataset."""

ROW_FORMAT = " ".join(c.fmt for c in COLUMNS) + "\n"
_BY_LABEL = {c.label: c for c in COLUMNS}

StarRows = npt.NDArray[np.void]


class CistemStarError(ValueError):
    """A cisTEM star file is malformed; the message names the file and the line."""


def empty_rows(count: int) -> StarRows:
    """``count`` rows holding cisTEM's defaults for a never-refined particle."""
    rows = np.zeros(count, dtype=DTYPE)
    for column in COLUMNS:
        if column.default:
            rows[column.name] = column.default
    return rows


def header_text(comments: Sequence[str] = ()) -> str:
    """Comment lines, the ``data_``/``loop_`` lines and the 22 labels, as refine2d lays them out."""
    lines: list[str] = []
    for comment in comments:
        if "data_" in comment or "loop_" in comment:
            raise ValueError(f"star comments must not contain data_ or loop_: {comment!r}")
        lines.append(f"# {comment}".rstrip())
    lines += [" ", "data_", " ", "loop_"]
    lines += [f"_{c.label} #{i}" for i, c in enumerate(COLUMNS, start=1)]
    lines.append(
        "#    POS     PSI       SHX       SHY     DF1     DF2  ANGAST  PSHIFT     OCC"
        "      LogP      SIGMA   SCORE  CHANGE    PSIZE    VOLT      Cs    AmpC  BTILTX"
        "  BTILTY  ISHFTX  ISHFTY 2DCLS"
    )
    return "\n".join(lines) + "\n"


def format_rows(rows: StarRows) -> str:
    """Rows as cisTEM-formatted text, one line each, no blank lines."""
    if len(rows) == 0:
        return ""
    names = [c.name for c in COLUMNS]
    columns = [rows[n].tolist() for n in names]
    return "".join(ROW_FORMAT % values for values in zip(*columns, strict=True))


def write_star(path: Path, rows: StarRows, comments: Sequence[str] = ()) -> None:
    """Write a complete star file atomically (temp, fsync, rename)."""
    with atomic_writer(Path(path), "w") as handle:
        handle.write(header_text(comments))
        handle.write(format_rows(rows))


def append_rows(path: Path, rows: StarRows) -> None:
    """Append rows to an existing star file and fsync it (no blank line is ever written).

    A torn tail left by a crash must be cut back by the caller before appending (the dataset
    does it from its ledger on open).
    """
    text = format_rows(rows)
    if not text:
        return
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def parse_star_text(text: str, source: str = "<star>") -> StarRows:
    """Parse a cisTEM star (refine2d output or ours). Missing optional columns get cisTEM's
    defaults; a missing required column, a short row or a non-number raises
    :class:`CistemStarError` naming ``source`` and the line."""
    lines = text.splitlines()
    i = 0
    while i < len(lines) and "data_" not in lines[i]:
        i += 1
    while i < len(lines) and "loop_" not in lines[i]:
        i += 1
    if i >= len(lines):
        raise CistemStarError(f"{source}: no data_/loop_ block")
    i += 1
    labels: list[str] = []
    while i < len(lines):
        stripped = lines[i].strip()
        if not stripped or stripped.startswith(("#", ";")):
            i += 1
            continue
        if not stripped.startswith("_"):
            break
        labels.append(stripped.split()[0][1:])
        i += 1
    for required in (
        "cisTEMPositionInStack",
        "cisTEMDefocus1",
        "cisTEMDefocus2",
        "cisTEMDefocusAngle",
    ):
        if required not in labels:
            raise CistemStarError(f"{source}: required column _{required} is missing")
    ncol = len(labels)
    data: list[str] = []
    for lineno in range(i, len(lines)):
        stripped = lines[lineno].strip()
        if not stripped:
            break  # cisTEM's reader ends the table at the first empty line
        if stripped.startswith(("#", ";")):
            continue
        if len(stripped.split()) != ncol:
            raise CistemStarError(
                f"{source}: line {lineno + 1} has {len(stripped.split())} fields, expected {ncol}"
            )
        data.append(stripped)
    if data:
        try:
            table = np.array(" ".join(data).split(), dtype=np.float64).reshape(len(data), ncol)
        except ValueError as exc:
            raise CistemStarError(f"{source}: a value is not a number ({exc})") from None
    else:
        table = np.zeros((0, ncol))
    rows = empty_rows(len(data))
    for j, label in enumerate(labels):
        column = _BY_LABEL.get(label)
        if column is None:
            continue
        values = table[:, j]
        if column.dtype == "i8":
            rows[column.name] = np.rint(values).astype(np.int64)
        else:
            rows[column.name] = values
    return rows


def read_star(path: Path) -> StarRows:
    """Read a cisTEM star file (see :func:`parse_star_text`)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="strict")
    except UnicodeDecodeError as exc:
        raise CistemStarError(f"{path}: not a text star file ({exc})") from None
    return parse_star_text(text, str(path))
