"""Particle stacks: our append-only combined stack, and the slices of Warp's stacks it takes.

The combined stack (``combined_stack.mrcs``) is float32 (MRC mode 2), little endian, 1024-byte
header (written by :mod:`live2d_tui.formats.mrc`), no extended header, protein white.
Invariants:
- existing slices are never rewritten: appends go past the end of the data, so a reader that
  uses only positions up to the NZ it saw is never disturbed;
- write order of an append: data (``pwrite``), ``fsync``, then **one** 1024-byte header write
  with the new NZ, ``fsync``. The caller commits the ledger only after that, so after a crash
  the ledger's NZ is ≤ the header's NZ ≤ the data present, and :meth:`CombinedStack.reconcile`
  cuts the stack back to the ledger's NZ.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from live2d_tui.atomic import atomic_write_bytes, fsync_dir
from live2d_tui.formats.mrc import HEADER_BYTES, MrcHeader, build_header, read_header, read_slices


class StackError(ValueError):
    """A particle stack does not fit the dataset, or the dataset's files are damaged; the message
    names the file. (A malformed MRC file raises :class:`~live2d_tui.formats.mrc.MrcError`.)"""


def combined_header(box: int, nz: int, pixel_size: float) -> bytes:
    """The combined stack's header: float32, ``nz`` slices of ``box``², statistics not computed,
    MZ at least 1 (so an empty stack has a voxel size too)."""
    return build_header((nz, box, box), pixel_size, mz=max(nz, 1))


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
        atomic_write_bytes(Path(path), combined_header(box, 0, pixel_size))
        return cls(path, box, pixel_size)

    def reconcile(self, committed_nz: int) -> bool:
        """Make header and data agree with the ledger's NZ (crash recovery); True if changed.

        Raises:
            StackError: the file is missing, not ours, or holds fewer slices than the ledger.
            MrcError: its header is not an MRC header.
        """
        try:
            header = read_header(self.path, "<")  # ours: always little endian
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
            os.pwrite(fd, combined_header(self.box, nz, self.pixel_size), 0)
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
