"""``combined_stack_relion.star``: RELION 3.1 star (optics + particles) of the combined stack.

Append-only like the stack: the header (optics table and particle labels) is written once when a
generation starts, then rows are appended, one per particle, in stack order (row i ↔ position
i+1), never a blank line between them. Each row points into ``combined_stack.mrcs``
(``rlnImageName``) and keeps Warp's own name of the particle (``rlnImageOriginalName`` =
``%07d@particles/<root>_<Model>.mrcs``) and the movie (``rlnMicrographName``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from live2d_tui.atomic import atomic_write_text

PARTICLE_LABELS = (
    "rlnImageName",
    "rlnImageOriginalName",
    "rlnMicrographName",
    "rlnCoordinateX",
    "rlnCoordinateY",
    "rlnDefocusU",
    "rlnDefocusV",
    "rlnDefocusAngle",
    "rlnPhaseShift",
    "rlnOpticsGroup",
)
VALUE_LABELS = PARTICLE_LABELS[3:9]
"""The Warp star columns :func:`format_rows` takes as ``values``, in this order (the same labels
in both stars): x, y, defocus U, defocus V, defocus angle, phase shift."""


@dataclass(frozen=True, slots=True)
class Optics:
    """The single optics group of a generation."""

    pixel_size: float
    box: int
    voltage: float
    cs: float
    amplitude_contrast: float


def header_text(optics: Optics) -> str:
    """The optics table and the particle table's labels."""
    lines = [
        "",
        "# version 30001",
        "",
        "data_optics",
        "",
        "loop_",
        "_rlnOpticsGroupName #1",
        "_rlnOpticsGroup #2",
        "_rlnMicrographOriginalPixelSize #3",
        "_rlnVoltage #4",
        "_rlnSphericalAberration #5",
        "_rlnAmplitudeContrast #6",
        "_rlnImagePixelSize #7",
        "_rlnImageSize #8",
        "_rlnImageDimensionality #9",
        f"opticsGroup1 1 {optics.pixel_size:.5f} {optics.voltage:.2f} {optics.cs:.3f} "
        f"{optics.amplitude_contrast:.4f} {optics.pixel_size:.5f} {optics.box} 2",
        "",
        "",
        "# version 30001",
        "",
        "data_particles",
        "",
        "loop_",
    ]
    lines += [f"_{label} #{i}" for i, label in enumerate(PARTICLE_LABELS, start=1)]
    return "\n".join(lines) + "\n"


def create(path: Path, optics: Optics) -> int:
    """Write a star with no particles atomically; returns its length in bytes."""
    text = header_text(optics)
    atomic_write_text(Path(path), text)
    return len(text.encode("utf-8"))


def format_rows(
    first_position: int,
    stack_name: str,
    warp_stack: str,
    micrograph: str,
    indices: npt.NDArray[np.int64],
    values: npt.NDArray[np.float64],
) -> str:
    """Rows for particles appended at ``first_position…`` from one Warp micrograph.

    ``values`` columns: :data:`VALUE_LABELS` (x, y, defocus U, defocus V, defocus angle,
    phase shift in degrees).
    """
    mic = (
        micrograph
        if micrograph and not any(c.isspace() for c in micrograph)
        else (f'"{micrograph}"' if micrograph else "None")
    )
    out: list[str] = []
    for k, (index, row) in enumerate(zip(indices.tolist(), values.tolist(), strict=True)):
        x, y, du, dv, angle, phase = row
        out.append(
            f"{first_position + k:07d}@{stack_name} {index:07d}@{warp_stack} {mic} "
            f"{x:.2f} {y:.2f} {du:.1f} {dv:.1f} {angle:.2f} {phase:.2f} 1\n"
        )
    return "".join(out)


def append_text(path: Path, chunks: Sequence[str]) -> int:
    """Append text chunks and fsync; returns the new file length in bytes."""
    with open(path, "a", encoding="utf-8") as handle:
        for chunk in chunks:
            handle.write(chunk)
        handle.flush()
        os.fsync(handle.fileno())
        return handle.tell()


def truncate_to(path: Path, length: int) -> bool:
    """Cut a star back to ``length`` bytes (crash recovery); True if it was longer.

    Raises:
        ValueError: the file is shorter than ``length`` (committed rows are missing).
    """
    size = Path(path).stat().st_size
    if size < length:
        raise ValueError(f"{path}: {size} bytes, the ledger records {length}")
    if size == length:
        return False
    with open(path, "r+b") as handle:
        handle.truncate(length)
        handle.flush()
        os.fsync(handle.fileno())
    return True
