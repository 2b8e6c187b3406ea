"""The session's health at a glance: the series the Session tab plots, made from plain arrays.

:func:`prepare_health` turns what is known about the session — one entry per processed movie
(its time, Warp's CTF fit, whether the particle table keeps it) and the completed cycles' class
populations — into a small, frozen :class:`SessionHealth`: rates per time bin, thinned per-movie
series, and the class populations of the current lineage. It is pure and runs in a worker
thread (the supervisor's health monitor); the UI only draws the result. Its cost is a few numpy
passes over the movies, so it grows linearly and gently with the session.

Time is **hours since the first movie**, from the movies' XML modification times (Warp's clock).
Rates are per hour whatever the bin width (bins of 5 min to 2 h, so a young session has several;
wide enough for a few movies each on average, so sparse movies do not draw a comb of 0 and 1).
The most recent bin is only partly elapsed; its rate counts the time from the bin's start to the
latest movie plus one mean interval between movies (each movie stands for one interval, so a
steady stream gets its true rate, and one early movie does not look like a flood).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

MAX_POINTS = 600
"""Per-movie series longer than this are thinned to at most this many medians of groups of
consecutive points (more than the columns of any terminal: what is drawn stays cheap on the UI's
event loop)."""

TOP_CLASSES = 8
"""Classes drawn one by one in the population plot; the others are summed as "other"."""

MAX_CYCLES = 60
"""Cycles of the current lineage shown in the population plot (the latest ones)."""

BIN_CHOICES_HOURS = (1 / 12, 0.25, 0.5, 1.0, 2.0)
"""Candidate bin widths (5 min to 2 h): the smallest that gives at most :data:`MAX_BINS`."""

MAX_BINS = 48

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class MovieArrays:
    """Per processed movie (one entry each, any order): the inputs of :func:`prepare_health`."""

    time: FloatArray
    """Seconds since the epoch (Warp's clock)."""
    resolution: FloatArray
    """Warp's CTF resolution estimate, Å (NaN: not fitted)."""
    defocus: FloatArray
    """Defocus, µm (NaN: not fitted)."""
    particles: npt.NDArray[np.int64]
    """Rows the particle table holds for the movie (0 when it is not in the table)."""
    in_table: npt.NDArray[np.bool_]
    """The particle table holds the movie."""
    verdict_known: npt.NDArray[np.bool_]
    """Warp has decided on the movie: the table was written after a later movie was processed
    (a new movie is in the table before its filter verdict is known)."""

    @classmethod
    def empty(cls) -> MovieArrays:
        """No movies."""
        f = np.zeros(0)
        b = np.zeros(0, dtype=bool)
        return cls(f, f, f, np.zeros(0, dtype=np.int64), b, b)

    def __len__(self) -> int:
        return int(self.time.shape[0])


@dataclass(frozen=True, slots=True)
class CycleClasses:
    """One completed cycle's class members (an input of :func:`prepare_health`)."""

    number: int
    generation: int
    seed: bool
    """A random-seed cycle: it starts a new lineage of classes (and has no members yet)."""
    members: tuple[int, ...]
    """Index 0 unassigned, index k class k."""


@dataclass(frozen=True, slots=True)
class Points:
    """A series to plot: x in hours since the first movie."""

    x: tuple[float, ...] = ()
    y: tuple[float, ...] = ()


@dataclass(frozen=True, slots=True)
class ClassPopulations:
    """Members per class over the cycles of the current lineage (since its seed cycle)."""

    cycles: tuple[int, ...] = ()
    labels: tuple[str, ...] = ()
    """``class k`` for the largest classes of the latest cycle, then ``other``."""
    counts: tuple[tuple[int, ...], ...] = ()
    """One tuple per label, one value per cycle."""


@dataclass(frozen=True, slots=True)
class SessionHealth:
    """What the Session tab draws (frozen, plain values; see the module docstring)."""

    start: float | None = None
    """Seconds since the epoch of the first movie (the origin of every x axis)."""
    bin_hours: float = 1.0
    bins: tuple[float, ...] = ()
    """Bin centres, hours since the first movie."""
    micrographs_per_hour: tuple[float, ...] = ()
    particles_per_hour: tuple[float, ...] = ()
    """Particles the table holds, of the movies processed in each bin."""
    rejected_percent: tuple[float, ...] = ()
    """Per bin: percent of the decided movies the table does not hold (NaN: none decided)."""
    resolution: Points = field(default_factory=Points)
    defocus: Points = field(default_factory=Points)
    classes: ClassPopulations = field(default_factory=ClassPopulations)
    micrographs: int = 0
    """Movies processed (XML read)."""
    micrographs_kept: int = 0
    """Movies the particle table holds."""
    particles: int = 0
    """Rows of the particle table."""
    table_name: str = ""
    """The particle table's file name (``goodparticles_<Model>.star``)."""
    span_hours: float = 0.0
    """Hours from the first movie to the latest."""


MOVIES_PER_BIN = 3.0
"""Bins are at least this many mean intervals between movies wide (when a choice allows it)."""


def choose_bin_hours(span_hours: float, movies: int = 0) -> float:
    """The smallest bin width of :data:`BIN_CHOICES_HOURS` giving at most :data:`MAX_BINS`,
    and, given the number of ``movies``, at least :data:`MOVIES_PER_BIN` mean intervals."""
    least = MOVIES_PER_BIN * span_hours / (movies - 1) if movies > 1 else 0.0
    for width in BIN_CHOICES_HOURS:
        if span_hours / width <= MAX_BINS and (width >= least or width == BIN_CHOICES_HOURS[-1]):
            return width
    return math.ceil(span_hours / MAX_BINS)


def thin(x: FloatArray, y: FloatArray, limit: int = MAX_POINTS) -> Points:
    """``(x, y)`` without NaN values, at most ``limit`` points: the medians of groups of equal
    size (the last one shorter) of consecutive points (x must be sorted)."""
    keep = ~np.isnan(y)
    x, y = x[keep], y[keep]
    n = int(x.shape[0])
    if n > limit:
        size = -(-n // limit)  # groups of `size` consecutive points, the last one shorter
        groups = -(-n // size)
        pad = groups * size - n
        x = np.nanmedian(np.pad(x, (0, pad), constant_values=np.nan).reshape(groups, size), 1)
        y = np.nanmedian(np.pad(y, (0, pad), constant_values=np.nan).reshape(groups, size), 1)
    return Points(x=tuple(float(v) for v in x), y=tuple(float(v) for v in y))


def class_populations(cycles: Sequence[CycleClasses]) -> ClassPopulations:
    """The members per class over the current lineage: the cycles after the latest seed cycle of
    the latest cycle's generation (class k is the same class only within a lineage)."""
    if not cycles:
        return ClassPopulations()
    ordered = sorted(cycles, key=lambda c: c.number)
    generation = ordered[-1].generation
    lineage: list[CycleClasses] = []
    for cycle in ordered:
        if cycle.generation != generation:
            continue
        if cycle.seed:
            lineage = []
        elif len(cycle.members) > 1:
            lineage.append(cycle)
    lineage = lineage[-MAX_CYCLES:]
    if not lineage:
        return ClassPopulations()
    k = max(len(c.members) for c in lineage) - 1
    table = np.zeros((len(lineage), k), dtype=np.int64)
    for i, cycle in enumerate(lineage):
        table[i, : len(cycle.members) - 1] = cycle.members[1:]
    latest = table[-1]
    order = np.argsort(-latest, kind="stable")
    top = [int(j) for j in order[:TOP_CLASSES] if latest[j] > 0] or [int(order[0])]
    labels = [f"class {j + 1}" for j in top]
    counts = [tuple(int(v) for v in table[:, j]) for j in top]
    rest = [j for j in range(k) if j not in top]
    if rest:
        labels.append("other")
        counts.append(tuple(int(v) for v in table[:, rest].sum(axis=1)))
    return ClassPopulations(
        cycles=tuple(c.number for c in lineage), labels=tuple(labels), counts=tuple(counts)
    )


def prepare_health(
    movies: MovieArrays, cycles: Sequence[CycleClasses], *, table_name: str = ""
) -> SessionHealth:
    """The Session tab's series (see the module docstring). Pure; blocking for large sessions,
    so call it in a worker thread."""
    classes = class_populations(cycles)
    kept = int(np.count_nonzero(movies.in_table))
    particles = int(movies.particles.sum())
    if len(movies) == 0:
        return SessionHealth(classes=classes, table_name=table_name)
    order = np.argsort(movies.time, kind="stable")
    time = movies.time[order]
    start = float(time[0])
    hours = (time - start) / 3600.0
    span = float(hours[-1])
    width = choose_bin_hours(span, len(time))
    index = np.minimum((hours // width).astype(np.int64), int(span // width))
    nbins = int(index[-1]) + 1
    counts = np.bincount(index, minlength=nbins).astype(np.float64)
    weights = movies.particles[order].astype(np.float64)
    particle_counts = np.bincount(index, weights=weights, minlength=nbins)
    elapsed = np.full(nbins, width)
    gap = span / (len(time) - 1) if len(time) > 1 else width
    elapsed[-1] = min(width, max(span - (nbins - 1) * width + gap, width / 100))
    known = movies.verdict_known[order]
    rejected = known & ~movies.in_table[order]
    decided = np.bincount(index, weights=known.astype(np.float64), minlength=nbins)
    dropped = np.bincount(index, weights=rejected.astype(np.float64), minlength=nbins)
    with np.errstate(invalid="ignore", divide="ignore"):
        percent = np.where(decided > 0, 100.0 * dropped / decided, np.nan)
    centres = (np.arange(nbins) + 0.5) * width
    centres[-1] = (nbins - 1) * width + elapsed[-1] / 2
    return SessionHealth(
        start=start,
        bin_hours=width,
        bins=tuple(float(v) for v in centres),
        micrographs_per_hour=tuple(float(v) for v in counts / elapsed),
        particles_per_hour=tuple(float(v) for v in particle_counts / elapsed),
        rejected_percent=tuple(float(v) for v in percent),
        resolution=thin(hours, movies.resolution[order]),
        defocus=thin(hours, movies.defocus[order]),
        classes=classes,
        micrographs=len(movies),
        micrographs_kept=kept,
        particles=particles,
        table_name=table_name,
        span_hours=span,
    )
