"""Just enough MRC header handling for the cycle runner: shape checks and pixel-size stamping.

cisTEM writes class averages with a dummy cell (1 Å per pixel) (cistem-protocol.md §7), so the
runner stamps the real pixel size into the header. A direct reader/writer of the 1024-byte
header is used instead of mrcfile: it touches only the bytes it needs (a class stack is never
loaded) and does not trip mrcfile's NumPy 2.5 deprecation warnings.

Header words used (MRC2014): nx, ny, nz, mode (bytes 0–16), nsymbt (92), mx, my, mz (28–40),
cella (40–52), machine stamp (212: 0x44 little endian, 0x11 big endian).
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

_MODE_BYTES = {0: 1, 1: 2, 2: 4, 6: 2, 12: 2}


class MrcHeaderError(ValueError):
    """Not a complete MRC file of a supported mode."""


@dataclass(frozen=True, slots=True)
class MrcShape:
    """Dimensions of an MRC file."""

    nx: int
    ny: int
    nz: int


def _order(header: bytes) -> str:
    return ">" if header[212] == 0x11 else "<"


def read_shape(path: Path, *, check_size: bool = True) -> MrcShape:
    """nx, ny, nz of an MRC file; with ``check_size``, the file must hold all its data."""
    with open(path, "rb") as handle:
        header = handle.read(1024)
        size = os.fstat(handle.fileno()).st_size
    if len(header) < 1024:
        raise MrcHeaderError(f"{path}: not an MRC file (shorter than its header)")
    order = _order(header)
    nx, ny, nz, mode = struct.unpack_from(f"{order}4i", header, 0)
    (extended,) = struct.unpack_from(f"{order}i", header, 92)
    if mode not in _MODE_BYTES or min(nx, ny, nz) < 1 or extended < 0:
        raise MrcHeaderError(f"{path}: unsupported MRC (mode {mode}, {nx}×{ny}×{nz})")
    expected = 1024 + extended + nx * ny * nz * _MODE_BYTES[mode]
    if check_size and size < expected:
        raise MrcHeaderError(f"{path}: truncated ({size} bytes, expected {expected})")
    return MrcShape(nx, ny, nz)


def stamp_pixel_size(path: Path, pixel_size: float) -> None:
    """Set the cell so the voxel size is ``pixel_size`` Å, and fsync the file."""
    if not pixel_size > 0:
        raise ValueError(f"pixel size must be > 0 (got {pixel_size})")
    with open(path, "rb+") as handle:
        header = handle.read(1024)
        if len(header) < 1024:
            raise MrcHeaderError(f"{path}: not an MRC file")
        order = _order(header)
        nx, ny, nz = struct.unpack_from(f"{order}3i", header, 0)
        mx, my, mz = struct.unpack_from(f"{order}3i", header, 28)
        mx, my, mz = mx or nx, my or ny, mz or nz
        handle.seek(28)
        handle.write(struct.pack(f"{order}3i", mx, my, mz))
        handle.write(struct.pack(f"{order}3f", mx * pixel_size, my * pixel_size, mz * pixel_size))
        handle.flush()
        os.fsync(handle.fileno())


def voxel_size(path: Path) -> tuple[float, float, float]:
    """The voxel size (cella / m) in Å per axis."""
    with open(path, "rb") as handle:
        header = handle.read(1024)
    order = _order(header)
    mx, my, mz = struct.unpack_from(f"{order}3i", header, 28)
    ax, ay, az = struct.unpack_from(f"{order}3f", header, 40)
    return (ax / mx if mx else 0.0, ay / my if my else 0.0, az / mz if mz else 0.0)
