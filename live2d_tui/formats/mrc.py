"""MRC files: the one reader and writer of the 1024-byte MRC2014 header, and slice reads.

Every MRC header the program reads or writes goes through here: Warp's particle stacks (ingest),
our combined stack, the class averages of refine2d/merge2d (shape checks, pixel-size stamping,
the montage) and the simulator's stacks. A direct reader/writer of the 1024-byte header is used
instead of mrcfile: it touches only the bytes it needs (a stack is never loaded, the class
averages are stamped in place) and does not trip mrcfile's NumPy 2.5 deprecation warnings. (The
engine's programs read and write their images with mrcfile.)

cisTEM writes class averages with a dummy cell (1 Å per pixel)
(docs/protocol.md#the-class-average-mrc), so the runner stamps the real pixel size into the header
(:func:`stamp_pixel_size`).

Header words used (MRC2014): nx, ny, nz, mode (bytes 0–16), mx, my, mz (28–40), cella
(40–52), cellb (52–64), mapc, mapr, maps (64–76), dmin, dmax, dmean (76–88), ispg (88), nsymbt
(92), exttyp (104), nversion (108), map (208), machine stamp (212), rms (216).

Byte order: the machine stamp says it (first byte 0x44 little endian, 0x11 big endian; any other
stamp is read as little endian), unless the caller knows the writer's order (Warp writes with
.NET's ``BinaryWriter``, always little endian). Headers are read and written in either order,
and data blocks are read in the file's order and returned as native float32.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

HEADER_BYTES = 1024
MODE_DTYPES: dict[int, np.dtype[np.generic]] = {
    0: np.dtype("<i1"),
    1: np.dtype("<i2"),
    2: np.dtype("<f4"),
    6: np.dtype("<u2"),
    12: np.dtype("<f2"),
}
"""MRC data modes for real-valued images (mode 12 = float16, Warp 2's default), little endian."""
MODE_FLOAT32 = 2
MODE_FLOAT16 = 12

ByteOrder = Literal["<", ">"]
"""Little or big endian, as ``struct`` and numpy write them."""
MACHINE_STAMPS: dict[ByteOrder, bytes] = {"<": b"\x44\x44\x00\x00", ">": b"\x11\x11\x00\x00"}
"""The machine stamp written for each byte order."""

NOT_COMPUTED = (0.0, -1.0, -2.0, -1.0)
"""dmin, dmax, dmean, rms saying "statistics not computed" (MRC2014: dmin > dmax, rms < 0)."""

Float32Array = npt.NDArray[np.float32]


class MrcError(ValueError):
    """An MRC file is malformed, of an unsupported mode, or shorter than its header says; the
    message names the file."""


@dataclass(frozen=True, slots=True)
class MrcHeader:
    """The fields of an MRC header the program uses."""

    nx: int
    ny: int
    nz: int
    mode: int
    nsymbt: int
    pixel_size: float
    """cell X / MX in Å (0 when the cell is not set)."""
    byte_order: ByteOrder
    """``<`` (little endian) or ``>`` (big endian), from the machine stamp."""

    @property
    def dtype(self) -> np.dtype[np.generic]:
        """numpy dtype of the data block (in the file's byte order)."""
        return MODE_DTYPES[self.mode].newbyteorder(self.byte_order)

    @property
    def data_offset(self) -> int:
        """Byte offset of the first slice."""
        return HEADER_BYTES + self.nsymbt

    @property
    def slice_bytes(self) -> int:
        """Bytes per slice."""
        return self.nx * self.ny * self.dtype.itemsize

    @property
    def expected_size(self) -> int:
        """File size of a complete stack: 1024 + NSYMBT + NX·NY·NZ·bytes(mode)."""
        return self.data_offset + self.nz * self.slice_bytes


def byte_order(header: bytes) -> ByteOrder:
    """``>`` when the machine stamp says big endian, else ``<``."""
    return ">" if header[212] == 0x11 else "<"


def parse_header(raw: bytes, source: str, order: ByteOrder | None = None) -> MrcHeader:
    """Decode a 1024-byte MRC header in ``order`` (default: the machine stamp's).

    Raises:
        MrcError: too short, unknown mode, or impossible dimensions.
    """
    if len(raw) < HEADER_BYTES:
        raise MrcError(f"{source}: {len(raw)} bytes, shorter than an MRC header")
    order = order or byte_order(raw)
    nx, ny, nz, mode = struct.unpack_from(f"{order}4i", raw, 0)
    mx = struct.unpack_from(f"{order}i", raw, 28)[0]
    cell_x = struct.unpack_from(f"{order}f", raw, 40)[0]
    nsymbt = struct.unpack_from(f"{order}i", raw, 92)[0]
    if mode not in MODE_DTYPES:
        endian = "little" if order == "<" else "big"
        raise MrcError(f"{source}: unsupported MRC mode {mode} (or not a {endian}-endian MRC)")
    if nx <= 0 or ny <= 0 or nz < 0 or nsymbt < 0:
        raise MrcError(f"{source}: impossible MRC dimensions {nx}×{ny}×{nz}, NSYMBT {nsymbt}")
    pixel = float(cell_x) / mx if mx > 0 and np.isfinite(cell_x) and cell_x > 0 else 0.0
    return MrcHeader(
        nx=nx, ny=ny, nz=nz, mode=mode, nsymbt=nsymbt, pixel_size=pixel, byte_order=order
    )


def read_header(path: Path, order: ByteOrder | None = None) -> MrcHeader:
    """Read and decode the header of an MRC file (1024 bytes only; see :func:`parse_header`)."""
    with open(path, "rb") as handle:
        raw = handle.read(HEADER_BYTES)
    return parse_header(raw, str(path), order)


def read_shape(path: Path, *, check_size: bool = True) -> MrcHeader:
    """The header of an MRC file of at least one slice; with ``check_size``, the file must hold
    all its data.

    Raises:
        MrcError: see :func:`parse_header`; no slices, or (``check_size``) truncated.
    """
    with open(path, "rb") as handle:
        raw = handle.read(HEADER_BYTES)
        size = os.fstat(handle.fileno()).st_size
    header = parse_header(raw, str(path))
    if header.nz < 1:
        raise MrcError(
            f"{path}: unsupported MRC (mode {header.mode}, {header.nx}×{header.ny}×{header.nz})"
        )
    expected = header.expected_size
    if check_size and size < expected:
        raise MrcError(f"{path}: truncated ({size} bytes, expected {expected})")
    return header


def read_slices(
    path: Path, header: MrcHeader, indices: npt.NDArray[np.int64], *, flip: bool = False
) -> Float32Array:
    """Slices ``indices`` (1-based) of a complete stack as float32 (N, NY, NX), optionally
    sign-flipped. The file is read with plain reads (no mmap: unsafe over SMB) and closed.

    Raises:
        MrcError: an index is beyond NZ or the file is shorter than its header says.
    """
    if indices.size and (indices.min() < 1 or indices.max() > header.nz):
        raise MrcError(f"{path}: slice {int(indices.max())} requested, stack has {header.nz}")
    lo = int(indices.min()) - 1 if indices.size else 0
    hi = int(indices.max()) if indices.size else 0
    count = (hi - lo) * header.nx * header.ny
    with open(path, "rb") as handle:
        handle.seek(header.data_offset + lo * header.slice_bytes)
        block = np.fromfile(handle, dtype=header.dtype, count=count)
    if block.size != count:
        raise MrcError(f"{path}: data block is shorter than the header says")
    block = block.reshape(hi - lo, header.ny, header.nx)
    contiguous = indices.size == hi - lo and bool((np.diff(indices) == 1).all())
    picked = block if contiguous else block[indices - 1 - lo]  # the usual case needs no copy
    out = picked.astype(np.float32, copy=False) if picked.dtype != np.float32 else picked
    if flip:
        np.negative(out, out=out)
    return np.ascontiguousarray(out)


def build_header(
    shape: tuple[int, ...],
    pixel_size: float,
    *,
    mode: int = MODE_FLOAT32,
    mz: int | None = None,
    statistics: tuple[float, float, float, float] = NOT_COMPUTED,
    exttyp: bytes = b"",
    order: ByteOrder = "<",
) -> bytes:
    """A 1024-byte MRC2014 header of an image stack: ISPG 0, no extended header, no labels.

    Args:
        shape: (NZ, NY, NX), the data's numpy shape.
        pixel_size: Å per pixel: the cell is pixel × (NX, NY, MZ), sampled (NX, NY, MZ).
        mode: the data mode (:data:`MODE_DTYPES`).
        mz: the sampling along Z (default NZ).
        statistics: dmin, dmax, dmean, rms (default :data:`NOT_COMPUTED`, so appending slices
            needs no update of the statistics).
        exttyp: the EXTTYP word (e.g. ``b"MRCO"``; default zeros).
        order: the byte order, ``<`` or ``>`` (the machine stamp says which).
    """
    nz, ny, nx = shape
    mz = nz if mz is None else mz
    dmin, dmax, dmean, rms = statistics
    raw = bytearray(HEADER_BYTES)
    struct.pack_into(f"{order}4i", raw, 0, nx, ny, nz, mode)
    struct.pack_into(f"{order}3i", raw, 28, nx, ny, mz)
    struct.pack_into(f"{order}3f", raw, 40, pixel_size * nx, pixel_size * ny, pixel_size * mz)
    struct.pack_into(f"{order}3f", raw, 52, 90.0, 90.0, 90.0)
    struct.pack_into(f"{order}3i", raw, 64, 1, 2, 3)
    struct.pack_into(f"{order}3f", raw, 76, dmin, dmax, dmean)
    struct.pack_into(f"{order}2i", raw, 88, 0, 0)
    raw[104:108] = exttyp.ljust(4, b"\x00")
    struct.pack_into(f"{order}i", raw, 108, 20140)
    raw[208:212] = b"MAP "
    raw[212:216] = MACHINE_STAMPS[order]
    struct.pack_into(f"{order}f", raw, 216, rms)
    return bytes(raw)


def stamp_pixel_size(path: Path, pixel_size: float) -> None:
    """Set the cell so the voxel size is ``pixel_size`` Å, and fsync the file."""
    if not pixel_size > 0:
        raise ValueError(f"pixel size must be > 0 (got {pixel_size})")
    with open(path, "rb+") as handle:
        header = handle.read(1024)
        if len(header) < 1024:
            raise MrcError(f"{path}: not an MRC file")
        order = byte_order(header)
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
    order = byte_order(header)
    mx, my, mz = struct.unpack_from(f"{order}3i", header, 28)
    ax, ay, az = struct.unpack_from(f"{order}3f", header, 40)
    return (ax / mx if mx else 0.0, ay / my if my else 0.0, az / mz if mz else 0.0)
