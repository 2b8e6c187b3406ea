"""Warp's particle tables (``goodparticles_<Model>.star`` / ``allparticles_<Model>.star``).

Warp writes RELION 3.0-style tables with an empty block name and no optics table
(docs/warp-formats.md#the-particle-tables-goodparticles-and-allparticles). Columns are found **by
name** (Warp keeps a loaded table's column order). A snapshot is accepted only when it is complete:
the required columns are present, every data row has every field, and the file ends with a newline
(common star parsers silently return a truncated last row; we reject the whole snapshot instead).

Parsing streams (:func:`parse_warp_star_chunks`): only complete lines of a chunk are parsed and
the partial last line is carried over, so memory is a few MB of text plus the compact numeric
arrays of the result, whatever the file size (Warp's table of a 1,000,000-particle session is
~250 MB of text). :func:`read_warp_star` reads a (local, private) file that way;
:func:`parse_warp_star` parses bytes already in memory.

The table is grouped by particle stack (one group per micrograph), preserving first appearance
order, because every later decision (new, unchanged, reprocessed, gone) is per micrograph.

:func:`star_text` writes a table as Warp's ``Star.Save`` does (the simulator's sessions): a
leading newline, ``data_``, a blank line, ``loop_``, ``_rlnX #n`` labels, then rows in which
every field is right-aligned to its column's width plus two spaces.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import numpy.typing as npt

from live2d_tui.formats.warp_xml import WarpFileError

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


CHUNK_BYTES = 1 << 20
"""Bytes read (and rows parsed) at a time: parsing holds one chunk, its decoded text and its
rows as Python strings (a few MB), never the whole file."""

MAX_LINE_BYTES = 1 << 20
"""A line longer than this is not a star line (a binary or garbled file): rejected instead of
being carried over chunk after chunk."""


def parse_warp_star(data: bytes, source: str) -> WarpTable:
    """Parse and validate a complete Warp particle star held in memory.

    Raises:
        WarpFileError: see :func:`parse_warp_star_chunks`.
    """
    if not data.endswith(b"\n"):
        raise WarpFileError(f"{source}: no final newline (file is being written)")
    step = CHUNK_BYTES
    chunks = (data[i : i + step] for i in range(0, len(data), step))
    return parse_warp_star_chunks(chunks, source, capacity=data.count(b"\n"))


def read_warp_star(path: Path, source: str | None = None) -> WarpTable:
    """Parse and validate a complete Warp particle star file, streaming.

    Memory does not depend on the file size (beyond the compact arrays of the result): the file
    is read :data:`CHUNK_BYTES` at a time, twice (lines are counted first, so the arrays are
    allocated once at their final size). Meant for a private local copy (see
    :class:`~live2d_tui.warp.snapshot.CopiedSnapshot`): the file must not change meanwhile.

    Args:
        path: the file to read.
        source: the name used in error messages (default: ``path``).

    Raises:
        WarpFileError: see :func:`parse_warp_star_chunks`.
    """
    name = str(path) if source is None else source
    with open(path, "rb") as handle:
        size = handle.seek(0, os.SEEK_END)
        if size:
            handle.seek(-1, os.SEEK_END)
        if not size or handle.read(1) != b"\n":
            raise WarpFileError(f"{name}: no final newline (file is being written)")
        handle.seek(0)
        lines = sum(chunk.count(b"\n") for chunk in _chunks(handle))
        handle.seek(0)
        return parse_warp_star_chunks(_chunks(handle), name, capacity=lines)


def _chunks(handle: BinaryIO) -> Iterator[bytes]:
    step = CHUNK_BYTES
    return iter(lambda: handle.read(step), b"")


def parse_warp_star_chunks(chunks: Iterable[bytes], source: str, capacity: int = 0) -> WarpTable:
    """Parse and validate a Warp particle star given as consecutive byte chunks (any split).

    Only complete lines are parsed; the partial last line of a chunk is carried over to the
    next, so a file that does not end with a newline (torn by a writer) is rejected.

    Args:
        chunks: the file's bytes, in order.
        source: the name used in error messages.
        capacity: expected number of lines (arrays are allocated once at this size and grown
            by doubling when it is too small).

    Raises:
        WarpFileError: not UTF-8, no final newline, no ``loop_``, a missing required column, a
            short or long row, a non-number, a bad ``rlnImageName`` or an absurdly long line
            (names ``source`` and, for rows, the line number).
    """
    header = _Header(source)
    parser: _RowParser | None = None
    lineno = 0
    carry = b""
    for chunk in chunks:
        buf = carry + chunk if carry else chunk
        pos = 0
        if parser is None:
            pos = header.feed(buf)
            if header.done:
                parser = _RowParser(header.labels, source, capacity)
                lineno = header.lineno
        if parser is not None:
            end = max(buf.rfind(b"\n", pos) + 1, pos)
            if end > pos:
                lineno = parser.feed(_decode(buf[pos:end], source), lineno)
            pos = end
        carry = buf[pos:]
        if len(carry) > MAX_LINE_BYTES:
            at = (lineno if parser is not None else header.lineno) + 1
            raise WarpFileError(f"{source}: line {at} is longer than {MAX_LINE_BYTES} bytes")
    if carry:
        raise WarpFileError(f"{source}: no final newline (file is being written)")
    if parser is None:  # header only: a valid, empty table
        header.finish()
        parser = _RowParser(header.labels, source, 0)
    return parser.table()


def _decode(data: bytes, source: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WarpFileError(f"{source}: not a text star file ({exc})") from None


class _Header:
    """The lines before the first data row: ``loop_`` and the column labels."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.labels: list[str] = []
        self.lineno = 0
        """Lines consumed (the lines before the first row once :attr:`done`)."""
        self.in_loop = False
        self.done = False

    def feed(self, buf: bytes) -> int:
        """Consume the complete header lines of ``buf``; the offset of the first byte not
        consumed (the first data row once :attr:`done`, else a partial line)."""
        pos = 0
        while not self.done:
            end = buf.find(b"\n", pos)
            if end < 0:
                break
            stripped = _decode(buf[pos : end + 1], self.source).strip()
            if not self.in_loop:
                self.in_loop = stripped.startswith("loop_")
            elif stripped.startswith("_"):
                self.labels.append(stripped.split()[0][1:])
            elif stripped and not stripped.startswith("#"):
                self.finish()  # this line is the first row
                break
            self.lineno += 1
            pos = end + 1
        return pos

    def finish(self) -> None:
        """The header is complete: check it.

        Raises:
            WarpFileError: no ``loop_`` or a required column is missing.
        """
        if not self.in_loop:
            raise WarpFileError(f"{self.source}: no loop_ table")
        for name in REQUIRED:
            if name not in self.labels:
                raise WarpFileError(f"{self.source}: required column _{name} is missing")
        self.done = True


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
        # Preallocated for every line (an upper bound on rows): no copies unless it is too small.
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
        if b > self.slices.shape[0]:
            self._grow(max(b, 2 * self.slices.shape[0]))
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

    def _grow(self, capacity: int) -> None:
        n = self.n
        values = np.empty((capacity, len(CTF_COLUMNS)), dtype=np.float64)
        slices = np.empty(capacity, dtype=np.int64)
        ids = np.empty(capacity, dtype=np.int64)
        values[:n], slices[:n], ids[:n] = self.values[:n], self.slices[:n], self.ids[:n]
        self.values, self.slices, self.ids = values, slices, ids

    def table(self) -> WarpTable:
        """Group rows by stack. Rows are sorted by stack once (skipped when, as usual, each
        micrograph's rows are already contiguous and in first-appearance order), so every
        micrograph's arrays are views, not copies."""
        n = self.n
        if self.slices.shape[0] > n + (n >> 4) + 64:  # grown by doubling: drop the spare rows
            self._grow(n)
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


def star_header(columns: Sequence[str]) -> str:
    """The head of a RELION 3.0 table as Warp's ``Star.Save`` writes it (empty block name)."""
    return "".join(
        ["\n", "data_\n", "\n", "loop_\n"]
        + [f"_{name} #{i}\n" for i, name in enumerate(columns, start=1)]
    )


def column_widths(rows: Sequence[Sequence[str]]) -> list[int]:
    """Warp's field widths: each column's widest value plus two spaces (``[]`` for no rows)."""
    return [max(map(len, column)) + 2 for column in zip(*rows, strict=True)]


def star_lines(rows: Sequence[Sequence[str]], widths: Sequence[int]) -> list[str]:
    """The rows of a table, every field right-aligned to its column's width."""
    return ["".join([v.rjust(w) for v, w in zip(row, widths, strict=True)]) + "\n" for row in rows]


def star_text(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A RELION 3.0 table as Warp's ``Star.Save`` writes it (empty block name)."""
    if not rows:
        return star_header(columns)
    return star_header(columns) + "".join(star_lines(rows, column_widths(rows)))
