"""MRC particle stacks: header checks of Warp's stacks and our append-only combined stack.

The combined stack (``combined_stack.mrcs``) is float32 (MRC mode 2), 1024-byte header, no
extended header, protein white. Invariants:
- existing slices are never rewritten: appends go past the end of the data, so a reader that
  uses only positions up to the NZ it saw is never disturbed;
- write order of an append: data (``pwrite``), ``fsync``, then **one** 1024-byte header write
  with the new NZ, ``fsync``. The caller commits the ledger only after that, so after a crash
  the ledger's NZ is ≤ the header's NZ ≤ the data present, and :meth:`CombinedStack.reconcile`
  cuts the stack back to the ledger's NZ.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from live2d_tui.atomic import atomic_write_bytes, fsync_dir

HEADER_BYTES = 1024
MODE_DTYPES: dict[int, np.dtype[np.generic]] = {
    0: np.dtype("<i1"),
    1: np.dtype("<i2"),
    2: np.dtype("<f4"),
    6: np.dtype("<u2"),
    12: np.dtype("<f2"),
}
"""MRC data modes for real-valued images (mode 12 = float16, Warp 2's default)."""

Float32Array = npt.NDArray[np.float32]


class StackError(ValueError):
    """A particle stack is malformed or incomplete; the message names the file."""


@dataclass(frozen=True, slots=True)
class MrcHeader:
    """The fields of an MRC header that ingest checks."""

    nx: int
    ny: int
    nz: int
    mode: int
    nsymbt: int
    pixel_size: float
    """cell X / MX in Å (0 when the cell is not set)."""

    @property
    def dtype(self) -> np.dtype[np.generic]:
        """numpy dtype of the data block."""
        return MODE_DTYPES[self.mode]

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


def parse_header(raw: bytes, source: str) -> MrcHeader:
    """Decode a 1024-byte little-endian MRC header.

    Raises:
        StackError: too short, big-endian/unknown mode, or impossible dimensions.
    """
    if len(raw) < HEADER_BYTES:
        raise StackError(f"{source}: {len(raw)} bytes, shorter than an MRC header")
    nx, ny, nz, mode = struct.unpack_from("<4i", raw, 0)
    mx = struct.unpack_from("<i", raw, 28)[0]
    cell_x = struct.unpack_from("<f", raw, 40)[0]
    nsymbt = struct.unpack_from("<i", raw, 92)[0]
    if mode not in MODE_DTYPES:
        raise StackError(f"{source}: unsupported MRC mode {mode} (or not a little-endian MRC)")
    if nx <= 0 or ny <= 0 or nz < 0 or nsymbt < 0:
        raise StackError(f"{source}: impossible MRC dimensions {nx}×{ny}×{nz}, NSYMBT {nsymbt}")
    pixel = float(cell_x) / mx if mx > 0 and np.isfinite(cell_x) and cell_x > 0 else 0.0
    return MrcHeader(nx=nx, ny=ny, nz=nz, mode=mode, nsymbt=nsymbt, pixel_size=pixel)


def read_header(path: Path) -> MrcHeader:
    """Read and decode the header of an MRC file (1024 bytes only)."""
    with open(path, "rb") as handle:
        raw = handle.read(HEADER_BYTES)
    return parse_header(raw, str(path))


def read_slices(
    path: Path, header: MrcHeader, indices: npt.NDArray[np.int64], *, flip: bool = False
) -> Float32Array:
    """Slices ``indices`` (1-based) of a complete stack as float32 (N, NY, NX), optionally
    sign-flipped. The file is read with plain reads (no mmap: unsafe over SMB) and closed.

    Raises:
        StackError: an index is beyond NZ or the file is shorter than its header says.
    """
    if indices.size and (indices.min() < 1 or indices.max() > header.nz):
        raise StackError(f"{path}: slice {int(indices.max())} requested, stack has {header.nz}")
    lo = int(indices.min()) - 1 if indices.size else 0
    hi = int(indices.max()) if indices.size else 0
    count = (hi - lo) * header.nx * header.ny
    with open(path, "rb") as handle:
        handle.seek(header.data_offset + lo * header.slice_bytes)
        block = np.fromfile(handle, dtype=header.dtype, count=count)
    if block.size != count:
        raise StackError(f"{path}: data block is shorter than the header says")
    block = block.reshape(hi - lo, header.ny, header.nx)
    contiguous = indices.size == hi - lo and bool((np.diff(indices) == 1).all())
    picked = block if contiguous else block[indices - 1 - lo]  # the usual case needs no copy
    out = picked.astype(np.float32, copy=False) if picked.dtype != np.float32 else picked
    if flip:
        np.negative(out, out=out)
    return np.ascontiguousarray(out)


def build_header(box: int, nz: int, pixel_size: float) -> bytes:
    """A 1024-byte MRC2014 header for a float32 image stack (ISPG 0, cell = pixel × dims)."""
    raw = bytearray(HEADER_BYTES)
    struct.pack_into("<4i", raw, 0, box, box, nz, 2)
    struct.pack_into("<3i", raw, 28, box, box, max(nz, 1))
    struct.pack_into("<3f", raw, 40, pixel_size * box, pixel_size * box, pixel_size * max(nz, 1))
    struct.pack_into("<3f", raw, 52, 90.0, 90.0, 90.0)
    struct.pack_into("<3i", raw, 64, 1, 2, 3)
    # dmin > dmax and rms < 0: statistics not computed (MRC2014), so appends need not update them.
    struct.pack_into("<3f", raw, 76, 0.0, -1.0, -2.0)
    struct.pack_into("<2i", raw, 88, 0, 0)
    struct.pack_into("<i", raw, 108, 20140)
    raw[208:212] = b"MAP "
    raw[212:216] = b"\x44\x44\x00\x00"
    struct.pack_into("<f", raw, 216, -1.0)
    return bytes(raw)


@dataclass(frozen=True, slots=True)
class SliceSource:
    """Slices of a complete Warp stack to append: ``indices`` (1-based), sign-flipped or not."""

    path: Path
    header: MrcHeader
    indices: npt.NDArray[np.int64]
    flip: bool

    @property
    def count(self) -> int:
        """Number of slices."""
        return int(self.indices.shape[0])

    @property
    def contiguous(self) -> bool:
        """The indices are one increasing run (Warp's usual case: 1..NZ)."""
        idx = self.indices
        return (
            idx.size > 0
            and int(idx[-1]) - int(idx[0]) + 1 == idx.size
            and bool((np.diff(idx) == 1).all())
        )


COPY_CHUNK_BYTES = 8 << 20
"""Converted data is streamed through one reusable buffer of about this size."""


class CombinedStack:
    """The append-only float32 stack of one dataset generation."""

    def __init__(self, path: Path, box: int, pixel_size: float) -> None:
        self.path = Path(path)
        self.box = box
        self.pixel_size = pixel_size
        self.slice_bytes = box * box * 4
        self.nz = 0
        self._raw = bytearray()
        self._out = np.zeros(0, dtype=np.float32)

    @classmethod
    def create(cls, path: Path, box: int, pixel_size: float) -> CombinedStack:
        """Write an empty stack (header only, NZ 0) atomically, replacing any file there."""
        atomic_write_bytes(Path(path), build_header(box, 0, pixel_size))
        return cls(path, box, pixel_size)

    def reconcile(self, committed_nz: int) -> bool:
        """Make header and data agree with the ledger's NZ (crash recovery); True if changed.

        Raises:
            StackError: the file is missing, not ours, or holds fewer slices than the ledger.
        """
        try:
            header = read_header(self.path)
            size = self.path.stat().st_size
        except FileNotFoundError:
            raise StackError(f"{self.path}: combined stack is missing") from None
        if header.mode != 2 or header.nx != self.box or header.ny != self.box or header.nsymbt:
            raise StackError(
                f"{self.path}: header {header.nx}×{header.ny} mode {header.mode} does not match "
                f"the ledger (box {self.box}, float32)"
            )
        want = HEADER_BYTES + committed_nz * self.slice_bytes
        if size < want:
            raise StackError(
                f"{self.path}: holds {(size - HEADER_BYTES) // self.slice_bytes} slices, "
                f"the ledger records {committed_nz}"
            )
        self.nz = committed_nz
        if size == want and header.nz == committed_nz:
            return False
        with open(self.path, "r+b") as handle:
            handle.truncate(want)
            handle.flush()
            os.fsync(handle.fileno())
        self._write_header(committed_nz)
        return True

    def append_from(self, sources: Sequence[SliceSource]) -> int:
        """Append the slices of several Warp stacks, converted to float32 protein white; returns
        the 1-based position of the first.

        Data first (after the last slice; nothing existing is touched), fsync, then one header
        write and fsync. A float32 stack that needs no flip is copied by the kernel
        (``copy_file_range``, like ``cp``); anything else streams through one reusable buffer,
        so memory stays bounded.
        """
        count = sum(src.count for src in sources)
        for src in sources:
            if count and (src.header.nx != self.box or src.header.ny != self.box):
                raise StackError(f"{src.path}: box {src.header.nx}, the stack's is {self.box}")
        first = self.nz + 1
        if count == 0:
            return first
        offset = HEADER_BYTES + self.nz * self.slice_bytes
        fd = os.open(self.path, os.O_WRONLY)
        try:
            for src in sources:
                offset = self._copy(fd, src, offset)
            os.fsync(fd)
        finally:
            os.close(fd)
        self._write_header(self.nz + count)
        self.nz += count
        return first

    def _copy(self, fd: int, src: SliceSource, offset: int) -> int:
        header = src.header
        if not src.contiguous:
            data = read_slices(src.path, header, src.indices, flip=src.flip)
            return _pwrite_all(fd, memoryview(data).cast("B"), offset)
        start = header.data_offset + (int(src.indices[0]) - 1) * header.slice_bytes
        with open(src.path, "rb") as handle:
            if header.mode == 2 and not src.flip:
                copied = _kernel_copy(
                    handle.fileno(), fd, start, offset, src.count * header.slice_bytes
                )
                if copied:
                    return offset + src.count * header.slice_bytes
            handle.seek(start)
            per_chunk = max(1, COPY_CHUNK_BYTES // self.slice_bytes)
            left = src.count
            while left:
                n = min(per_chunk, left)
                raw_bytes = n * header.slice_bytes
                if len(self._raw) < raw_bytes:
                    self._raw = bytearray(raw_bytes)
                view = memoryview(self._raw)[:raw_bytes]
                got = handle.readinto(view)
                if got != raw_bytes:
                    raise StackError(f"{src.path}: data block is shorter than the header says")
                values = np.frombuffer(
                    self._raw, dtype=header.dtype, count=n * header.nx * header.ny
                )
                if self._out.size < values.size:
                    self._out = np.empty(values.size, dtype=np.float32)
                out = self._out[: values.size]
                if src.flip:
                    np.negative(values, out=out, casting="unsafe")
                else:
                    np.copyto(out, values, casting="unsafe")
                offset = _pwrite_all(fd, memoryview(out).cast("B"), offset)
                left -= n
        return offset

    def _write_header(self, nz: int) -> None:
        fd = os.open(self.path, os.O_WRONLY)
        try:
            os.pwrite(fd, build_header(self.box, nz, self.pixel_size), 0)
            os.fsync(fd)
        finally:
            os.close(fd)


def ensure_folder(folder: Path) -> None:
    """Create ``folder`` (and parents) and make its entry durable."""
    folder.mkdir(parents=True, exist_ok=True)
    fsync_dir(folder.parent)


def _pwrite_all(fd: int, payload: memoryview, offset: int) -> int:
    written = 0
    while written < len(payload):
        written += os.pwrite(fd, payload[written:], offset + written)
    return offset + len(payload)


def _kernel_copy(src_fd: int, dst_fd: int, src_offset: int, dst_offset: int, length: int) -> bool:
    """Copy a byte range between files inside the kernel; False when not supported here
    (e.g. across filesystems), so the caller falls back to read + write."""
    done = 0
    try:
        while done < length:
            n = os.copy_file_range(
                src_fd, dst_fd, length - done, src_offset + done, dst_offset + done
            )
            if n == 0:
                raise StackError("source ended early during copy")
            done += n
    except OSError:
        if done:
            # Partly copied: finish the rest the portable way.
            os.lseek(src_fd, src_offset + done, os.SEEK_SET)
            return _finish_copy(src_fd, dst_fd, dst_offset + done, length - done)
        return False
    return True


def _finish_copy(src_fd: int, dst_fd: int, dst_offset: int, length: int) -> bool:
    while length:
        chunk = os.read(src_fd, min(length, COPY_CHUNK_BYTES))
        if not chunk:
            raise StackError("source ended early during copy")
        dst_offset = _pwrite_all(dst_fd, memoryview(chunk), dst_offset)
        length -= len(chunk)
    return True
