"""Partial class sums ("dumps") of both engines, as one float64 model that adds and subtracts.

A refine2d job in dump mode writes the sufficient statistics of its particles: per class the
CTF-weighted sum of the aligned particles, the sum of the squared CTFs and the summed class
probability. merge2d turns sums into averages. The streaming runner keeps a running total of
these sums over all blocks and gives merge2d that total as its only dump, so it must read and
write both engines' files:

**cisTEM** (``refine2d``'s ``DumpArrays`` and ``merge2d``'s ``ReadArrays``, ``src/programs/
refine2d/refine2d.cpp`` and ``src/programs/merge2d/merge2d.cpp``): raw native-endian binary,
no magic number:

1. four 32-bit ints: box N, classes K, non-empty classes Knz, particles processed;
2. six 32-bit floats: log of the summed particle likelihoods, summed 1/σ, pixel size, mask
   radius, mask falloff (20), log range (20);
3. K ints: the 0-based slots of the non-empty classes in order, then −1 for the rest;
4. Knz floats: each non-empty class's log of its summed probabilities;
5. per non-empty class, two arrays of 2·(⌊N/2⌋+1)·N floats: the class sum and the CTF² sum,
   both Fourier transforms in FFTW's half-plane layout (N rows of ⌊N/2⌋+1 complex values).

merge2d adds the class logs with cisTEM's log-add (``ReturnSumOfLogP``: terms more than 20 below
the running sum are dropped), adds the arrays slot by slot, divides each class sum by
\\|CTF² sum\\| + occupancy, where occupancy = exp(class log − ln(particles processed)), and writes
each slot at the class its map names. It compares only the box, K, **the count** Knz and the pixel
size of each dump with the first's, and keeps the **last** dump's map, so dumps whose sets of
non-empty classes differ with equal counts are summed into the wrong classes without an error.
This module reads every dump with its own map, into all K classes, so sums from different sets
add by class number, never by slot.

**Ours**: :mod:`live2d_tui.formats.live2d_dump` (an ``.npz``; sums over the run's average band).

In :class:`Partials` the class probabilities are held as linear sums (``weight``; cisTEM's class
log is ln(weight)), so a block's old contribution can be subtracted exactly, and the arrays are
float64: the running total (:func:`write_total`) is kept in that precision, and each update
writes merge2d's single input from it in the engine's own format (:func:`write_engine_dump`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path

import numpy as np
import numpy.typing as npt

from live2d_tui.atomic import atomic_writer
from live2d_tui.formats.live2d_dump import ClassSums, DumpError, read_dump, write_dump

CISTEM_HEADER = np.dtype(
    [
        ("box", "=i4"),
        ("classes", "=i4"),
        ("nonzero", "=i4"),
        ("processed", "=i4"),
        ("logp_total", "=f4"),
        ("snr", "=f4"),
        ("pixel_size", "=f4"),
        ("mask_radius", "=f4"),
        ("falloff", "=f4"),
        ("log_range", "=f4"),
    ]
)
"""The 40-byte header of a cisTEM dump."""
LOG_RANGE = 20.0
"""cisTEM's log range: merge2d treats a class log outside ±this as empty."""
MASK_FALLOFF = 20.0
EMPTY_LOGP = -float(np.finfo(np.float32).max)
"""cisTEM's class log of a class without probability (−FLT_MAX)."""
TOTAL_FORMAT = "live2d-stream-total"


class DumpFormat(StrEnum):
    """Which engine wrote (or reads) a dump."""

    CISTEM = "cistem"
    LIVE2D = "live2d"


class PartialsError(ValueError):
    """A dump is unreadable, or dumps cannot be combined."""


@dataclass
class Partials:
    """Class sums of a set of particles for all K classes (see the module docstring)."""

    format: DumpFormat
    box: int
    pixel_size: float
    mask_radius: float
    searched: npt.NDArray[np.bool_]
    """(K,) the classes the dump's map names (searched: non-empty references)."""
    weight: npt.NDArray[np.float64]
    """(K,) summed class probabilities."""
    sums: npt.NDArray[np.complex128]
    """(K, rows, cols) class sums, half-plane Fourier arrays."""
    ctf2: npt.NDArray[np.complexfloating] | npt.NDArray[np.floating]
    """(K, rows, cols) CTF² sums (complex in cisTEM's files, real in ours)."""
    processed: int
    total_logp: float
    """cisTEM: log of the summed particle likelihoods (cosmetic); ours: their plain sum."""
    snr: float = 0.0
    """cisTEM's summed 1/σ (unused by merge2d)."""
    binned_box: int = 0
    """Ours: the box of the sums (the run's average band)."""
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def n_classes(self) -> int:
        return len(self.searched)

    @property
    def nbytes(self) -> int:
        return int(self.sums.nbytes + self.ctf2.nbytes)

    def check_compatible(self, other: Partials) -> None:
        """Raise :class:`PartialsError` unless ``other`` sums over the same classes and grid."""
        same = (
            self.format is other.format
            and self.box == other.box
            and self.n_classes == other.n_classes
            and self.sums.shape == other.sums.shape
            and self.binned_box == other.binned_box
            and abs(self.pixel_size - other.pixel_size) <= 1e-6 * self.pixel_size
        )
        if not same:
            raise PartialsError(
                f"dumps do not match: {self.describe()} and {other.describe()} (a dump of another "
                "box, class count, pixel size or engine)"
            )

    def describe(self) -> str:
        return (
            f"{self.format.value} dump, box {self.box}, {self.n_classes} classes, grid "
            f"{self.sums.shape[1:]}, pixel {self.pixel_size:g} Å"
        )

    def add(
        self, other: Partials, sign: int = 1, classes: npt.NDArray[np.bool_] | None = None
    ) -> None:
        """Add ``sign`` × ``other`` (``classes``: only those classes' arrays and weights; the
        particle count and totals always)."""
        self.check_compatible(other)
        take = np.ones(self.n_classes, dtype=bool) if classes is None else classes
        self.sums[take] += sign * other.sums[take]
        if np.iscomplexobj(other.ctf2) and not np.iscomplexobj(self.ctf2):
            self.ctf2 = self.ctf2.astype(np.complex128)
        self.ctf2[take] += sign * other.ctf2[take]
        self.weight[take] += sign * other.weight[take]
        self.processed += sign * other.processed
        self.snr += sign * other.snr
        if self.format is DumpFormat.CISTEM:
            if sign > 0:  # a log-domain total cannot be un-added; merge2d only prints it
                self.total_logp = log_add(self.total_logp, other.total_logp)
        else:
            self.total_logp += sign * other.total_logp

    def clear_classes(self, classes: npt.NDArray[np.bool_]) -> None:
        """Empty the given classes (their sums, CTF² and weights become zero)."""
        self.sums[classes] = 0.0
        self.ctf2[classes] = 0.0
        self.weight[classes] = 0.0

    def zeroed(self) -> Partials:
        """An empty total of the same shape and format."""
        return replace(
            self,
            searched=np.zeros_like(self.searched),
            weight=np.zeros_like(self.weight),
            sums=np.zeros_like(self.sums),
            ctf2=np.zeros_like(self.ctf2),
            processed=0,
            total_logp=EMPTY_LOGP if self.format is DumpFormat.CISTEM else 0.0,
            snr=0.0,
            extra=dict(self.extra),
        )

    def filled(self) -> npt.NDArray[np.bool_]:
        """(K,) classes that hold particles (merge2d gives them an average)."""
        occupied: npt.NDArray[np.bool_] = self.weight > 0
        if self.format is DumpFormat.CISTEM:  # merge2d leaves a class log below −20 empty
            with np.errstate(divide="ignore"):
                occupied &= np.log(np.maximum(self.weight, 0.0)) >= -LOG_RANGE
        return occupied


def log_add(a: float, b: float, log_range: float = LOG_RANGE) -> float:
    """cisTEM's ``ReturnSumOfLogP``: ln(e^a + e^b), a term more than ``log_range`` below the
    other dropped."""
    if b < a - log_range:
        return a
    if a < b - log_range:
        return b
    return float(a + math.log1p(math.exp(b - a)))


# ----------------------------------------------------------------------- cisTEM's raw dumps


def _cistem_grid(box: int) -> tuple[int, int]:
    return box, box // 2 + 1


def read_cistem_dump(path: Path) -> Partials:
    """Read a cisTEM dump into all K classes by its own map; raises :class:`PartialsError`."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PartialsError(f"cannot read dump file {path}: {exc}") from None
    if len(raw) < CISTEM_HEADER.itemsize:
        raise PartialsError(f"{path}: {len(raw)} bytes, shorter than a cisTEM dump header")
    head = np.frombuffer(raw, CISTEM_HEADER, count=1)[0]
    box, k, knz, processed = (int(head[n]) for n in ("box", "classes", "nonzero", "processed"))
    if not (box > 0 and 0 < k < 100_000 and 0 <= knz <= k):
        raise PartialsError(f"{path}: not a cisTEM dump (box {box}, {k} classes, {knz} non-empty)")
    rows, cols = _cistem_grid(box)
    per_array = rows * cols * 2
    expected = CISTEM_HEADER.itemsize + 4 * k + 4 * knz + knz * 2 * per_array * 4
    if len(raw) != expected:
        raise PartialsError(
            f"{path}: {len(raw)} bytes, a cisTEM dump of box {box}, {k} classes and {knz} "
            f"non-empty ones has {expected}"
        )
    offset = CISTEM_HEADER.itemsize
    slots = np.frombuffer(raw, "=i4", count=k, offset=offset)
    offset += 4 * k
    class_logp = np.frombuffer(raw, "=f4", count=knz, offset=offset).astype(np.float64)
    offset += 4 * knz
    arrays = np.frombuffer(raw, "=f4", count=knz * 2 * per_array, offset=offset)
    arrays = arrays.reshape(knz, 2, rows, cols, 2)
    mapped = slots[:knz]
    if knz and (mapped.min() < 0 or mapped.max() >= k or len(set(mapped.tolist())) != knz):
        raise PartialsError(f"{path}: its map of non-empty classes is damaged: {mapped.tolist()}")
    searched = np.zeros(k, dtype=bool)
    searched[mapped] = True
    weight = np.zeros(k)
    with np.errstate(over="ignore", under="ignore"):
        weight[mapped] = np.where(class_logp > EMPTY_LOGP / 2, np.exp(class_logp), 0.0)
    sums = np.zeros((k, rows, cols), dtype=np.complex128)
    ctf2 = np.zeros((k, rows, cols), dtype=np.complex128)
    sums[mapped] = arrays[:, 0, ..., 0] + 1j * arrays[:, 0, ..., 1]
    ctf2[mapped] = arrays[:, 1, ..., 0] + 1j * arrays[:, 1, ..., 1]
    return Partials(
        format=DumpFormat.CISTEM,
        box=box,
        pixel_size=float(head["pixel_size"]),
        mask_radius=float(head["mask_radius"]),
        searched=searched,
        weight=weight,
        sums=sums,
        ctf2=ctf2,
        processed=processed,
        total_logp=float(head["logp_total"]),
        snr=float(head["snr"]),
        extra={"falloff": float(head["falloff"]), "log_range": float(head["log_range"])},
    )


def write_cistem_dump(path: Path, data: Partials) -> npt.NDArray[np.int64]:
    """Write ``data`` as one cisTEM dump (its map: the classes holding particles, see
    :meth:`Partials.filled`); returns those classes (0-based)."""
    if data.format is not DumpFormat.CISTEM:
        raise PartialsError(f"cannot write a {data.format.value} dump in cisTEM's format")
    if data.processed >= 2**31:
        raise PartialsError(f"{data.processed} particles do not fit cisTEM's 32-bit count")
    k = data.n_classes
    mapped = np.flatnonzero(data.filled()).astype(np.int64)
    head = np.zeros(1, CISTEM_HEADER)
    head["box"], head["classes"], head["nonzero"] = data.box, k, len(mapped)
    head["processed"] = data.processed
    head["logp_total"] = data.total_logp
    head["snr"], head["pixel_size"] = data.snr, data.pixel_size
    head["mask_radius"] = data.mask_radius
    head["falloff"] = data.extra.get("falloff", MASK_FALLOFF)
    head["log_range"] = data.extra.get("log_range", LOG_RANGE)
    slots = np.full(k, -1, dtype="=i4")
    slots[: len(mapped)] = mapped
    class_logp = np.log(data.weight[mapped]).astype("=f4")
    rows, cols = data.sums.shape[1:]
    arrays = np.empty((len(mapped), 2, rows, cols, 2), dtype="=f4")
    arrays[:, 0, ..., 0], arrays[:, 0, ..., 1] = data.sums[mapped].real, data.sums[mapped].imag
    ctf2 = np.asarray(data.ctf2[mapped])
    arrays[:, 1, ..., 0] = ctf2.real
    arrays[:, 1, ..., 1] = ctf2.imag if np.iscomplexobj(ctf2) else 0.0
    with atomic_writer(Path(path), "wb") as handle:
        handle.write(head.tobytes())
        handle.write(slots.tobytes())
        handle.write(class_logp.tobytes())
        handle.write(arrays.tobytes())
    return mapped


# ----------------------------------------------------------------------- ours, and the total


def from_class_sums(data: ClassSums) -> Partials:
    """Our engine's dump as :class:`Partials`."""
    return Partials(
        format=DumpFormat.LIVE2D,
        box=data.box,
        pixel_size=data.pixel_size,
        mask_radius=data.mask_radius,
        searched=np.asarray(data.nonzero, dtype=bool).copy(),
        weight=np.asarray(data.class_weight, dtype=np.float64).copy(),
        sums=np.asarray(data.sums, dtype=np.complex128).copy(),
        ctf2=np.asarray(data.ctf2, dtype=np.float64).copy(),
        processed=int(data.processed),
        total_logp=float(data.total_logp),
        binned_box=int(data.binned_box),
    )


def to_class_sums(data: Partials) -> ClassSums:
    """:class:`Partials` of our engine as its dump (its map: the classes holding particles)."""
    return ClassSums(
        box=data.box,
        binned_box=data.binned_box,
        pixel_size=data.pixel_size,
        mask_radius=data.mask_radius,
        nonzero=data.filled(),
        sums=data.sums,
        ctf2=np.real(data.ctf2).astype(np.float64),
        class_weight=data.weight,
        processed=data.processed,
        total_logp=data.total_logp,
    )


def read_engine_dump(path: Path, fmt: DumpFormat) -> Partials:
    """A job's dump in its engine's format."""
    if fmt is DumpFormat.CISTEM:
        return read_cistem_dump(path)
    try:
        return from_class_sums(read_dump(path))
    except DumpError as exc:
        raise PartialsError(str(exc)) from None


def write_engine_dump(path: Path, data: Partials) -> npt.NDArray[np.int64]:
    """Write ``data`` as its engine's dump (merge2d's input); returns the classes it names."""
    if data.format is DumpFormat.CISTEM:
        return write_cistem_dump(path, data)
    write_dump(path, to_class_sums(data))
    return np.flatnonzero(data.filled()).astype(np.int64)


def write_total(path: Path, data: Partials) -> None:
    """Write a running total (float64, every field) atomically."""
    with atomic_writer(Path(path), "wb") as handle:
        np.savez(
            handle,
            format=np.array(TOTAL_FORMAT),
            dump_format=np.array(data.format.value),
            box=np.array(data.box),
            pixel_size=np.array(data.pixel_size),
            mask_radius=np.array(data.mask_radius),
            searched=data.searched,
            weight=data.weight,
            sums=data.sums,
            ctf2=data.ctf2,
            processed=np.array(data.processed),
            total_logp=np.array(data.total_logp),
            snr=np.array(data.snr),
            binned_box=np.array(data.binned_box),
            extra_keys=np.array(sorted(data.extra), dtype=str),
            extra_values=np.array([data.extra[key] for key in sorted(data.extra)]),
        )


def read_total(path: Path) -> Partials:
    """Read a running total written by :func:`write_total`."""
    try:
        with np.load(Path(path), allow_pickle=False) as archive:
            if str(archive["format"]) != TOTAL_FORMAT:
                raise PartialsError(f"{path} is not a streaming total")
            keys = [str(key) for key in archive["extra_keys"]]
            values = [float(v) for v in archive["extra_values"]]
            return Partials(
                format=DumpFormat(str(archive["dump_format"])),
                box=int(archive["box"]),
                pixel_size=float(archive["pixel_size"]),
                mask_radius=float(archive["mask_radius"]),
                searched=np.asarray(archive["searched"], dtype=bool),
                weight=np.asarray(archive["weight"], dtype=np.float64),
                sums=np.asarray(archive["sums"], dtype=np.complex128),
                ctf2=np.asarray(archive["ctf2"]),
                processed=int(archive["processed"]),
                total_logp=float(archive["total_logp"]),
                snr=float(archive["snr"]),
                binned_box=int(archive["binned_box"]),
                extra=dict(zip(keys, values, strict=True)),
            )
    except (OSError, ValueError, KeyError) as exc:
        if isinstance(exc, PartialsError):
            raise
        raise PartialsError(f"cannot read streaming total {path}: {exc}") from None


def check_same_classes(named: Sequence[tuple[str, npt.NDArray[np.bool_]]]) -> None:
    """Refuse dumps that do not name the same set of non-empty classes.

    merge2d checks only how many classes a dump names, keeps the last dump's map and sums slot
    by slot; dumps of different sets with equal counts would be summed into the wrong classes
    without an error. Raises :class:`PartialsError` naming the first dump that differs.
    """
    if not named:
        return
    first_name, first = named[0]
    for name, searched in named[1:]:
        if not np.array_equal(searched, first):
            only_first = (np.flatnonzero(first & ~searched) + 1).tolist()
            only_this = (np.flatnonzero(searched & ~first) + 1).tolist()
            raise PartialsError(
                f"dumps name different sets of non-empty classes: {first_name} has classes "
                f"{only_first} that {name} lacks, {name} has {only_this} that {first_name} lacks "
                "(merge2d would sum them into the wrong classes)"
            )
