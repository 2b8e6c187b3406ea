"""The per-class half-set consistency estimate of a cycle, and its cache beside the cycle.

For each class k of a cycle (its ``cycle_<N>.star`` and the combined stack it indexes):

1. the particles **used** for class k this round (``_cisTEMBest2DClass`` = +k: those that made
   the class average); above :data:`DEFAULT_CAP` of them, an evenly spaced subset in position
   order (the whole collection time, deterministic);
2. split alternately into two halves (odd and even rows in position order);
3. each half re-averaged from the star's psi, shifts and CTF
   (:func:`live2d_tui.resolution.wiener_average`, the scorer's own re-average), both halves
   multiplied by a soft circular mask at the cycle's ``mask_radius`` (raised-cosine edge of
   :data:`MASK_EDGE_PX` pixels);
4. their FRC; the figure is the resolution at the first ring below :data:`THRESHOLD` (0.143).

Both halves share one alignment (the star's poses, found against one class average), so the
figure is a **half-set consistency estimate**, optimistic against the truth; it is not an
independent ("gold-standard") resolution. No figure is given for a class with fewer than
:data:`MIN_USED` used particles, nor for one whose curve does not stay above the threshold for
the first :data:`MIN_RINGS` rings (no consistent signal: a class of pure noise whose poses do
not agree crosses 0.143 within the first rings).

The result is cached as ``cycle_<N>.quality.json`` in the output folder (written atomically),
with the star's and class stack's size and modification time, so a changed cycle is computed
again, and the parameters (cap, threshold, mask), so the screen can say what the figure is.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from live2d_tui import imaging, resolution
from live2d_tui.atomic import atomic_write_json
from live2d_tui.classify.counts import class_counts
from live2d_tui.formats.cistem_star import StarRows, read_star
from live2d_tui.formats.mrc import read_header, read_scattered

SCHEMA = 1
"""Version of the cache file's layout."""

THRESHOLD = 0.143
"""FRC threshold between two noisy half-sets."""

MIN_USED = 50
"""Below this many used particles a class gets no figure (too few for two half-averages)."""

MIN_RINGS = 4
"""The curve must stay at or above the threshold for rings 1 … MIN_RINGS (the figure is then
at least N·px/(MIN_RINGS + 1) Å)."""

SIGNIFICANT_RINGS = 3
"""Rings before the crossing where the curve must exceed 3σ of pure noise (see :func:`figure`;
false figures on classes of pure noise are measured in ``tests/results/test_quality.py``)."""

DEFAULT_CAP = 1000
"""Particles per class at most (an evenly spaced subset beyond): bounds the cost at any
dataset size (measured in ``benchmarks/bench_quality.py``)."""

MASK_EDGE_PX = 4.0
"""Width in pixels of the mask's raised-cosine edge outside ``mask_radius``."""


def cache_path(output_folder: Path, cycle: int) -> Path:
    """``<output folder>/cycle_<N>.quality.json``."""
    return Path(output_folder) / f"cycle_{cycle}.quality.json"


@dataclass(frozen=True, slots=True)
class ClassQuality:
    """One class's figures."""

    class_number: int
    members: int
    """Particles whose |class| is k."""
    used: int
    """Particles with class +k (those that made the average this round)."""
    sampled: int
    """Used particles the estimate was made from (≤ the cap)."""
    mean_score: float | None
    """Mean ``_cisTEMScore`` of the used particles (``None`` without any)."""
    resolution: float | None
    """Å at FRC 0.143 between the half-sets; ``None``: no figure (see ``reason``)."""
    reason: str = ""
    """Why there is no figure (empty when there is one)."""
    curve: tuple[float, ...] = ()
    """FRC per ring 0 … N//2 (ring r is N·px/r Å), 4 decimals; empty without a computation."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values."""
        data = asdict(self)
        data["curve"] = list(self.curve)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClassQuality:
        """Read :meth:`to_dict`'s values."""
        res = data.get("resolution")
        score = data.get("mean_score")
        return cls(
            class_number=int(data["class_number"]),
            members=int(data["members"]),
            used=int(data["used"]),
            sampled=int(data.get("sampled", 0)),
            mean_score=None if score is None else float(score),
            resolution=None if res is None else float(res),
            reason=str(data.get("reason", "")),
            curve=tuple(float(v) for v in data.get("curve", [])),
        )


@dataclass(frozen=True, slots=True)
class CycleQuality:
    """The estimate of every class of one cycle (and what it was computed from)."""

    cycle: int
    box: int
    pixel_size: float
    mask_radius: float
    """Å."""
    cap: int
    particles: int
    """Rows of the cycle's star."""
    classes: tuple[ClassQuality, ...]
    source: dict[str, list[int]] = field(default_factory=dict)
    """File name → [size, mtime_ns] of the star and class stack it was computed from."""
    seconds: float = 0.0
    """Wall time of the computation."""
    threshold: float = THRESHOLD
    min_used: int = MIN_USED

    def by_class(self) -> dict[int, ClassQuality]:
        """Class number → its figures."""
        return {c.class_number: c for c in self.classes}

    def fraction(self, class_number: int) -> float:
        """Members of the class ÷ the cycle's particles."""
        found = self.by_class().get(class_number)
        return 0.0 if found is None or not self.particles else found.members / self.particles

    def describe(self) -> str:
        """What the figures are, in one line (said on screen beside them)."""
        return (
            f"half-set consistency estimate: FRC {self.threshold:g} of odd/even half averages "
            f"from the cycle's poses, mask {self.mask_radius:g} Å, at most {self.cap:,} "
            f"particles per class, none under {self.min_used} used (optimistic: both halves "
            "share one alignment)"
        )

    def to_dict(self) -> dict[str, Any]:
        """The cache file's content."""
        return {
            "version": SCHEMA,
            "cycle": self.cycle,
            "box": self.box,
            "pixel_size": self.pixel_size,
            "mask_radius": self.mask_radius,
            "cap": self.cap,
            "threshold": self.threshold,
            "min_used": self.min_used,
            "particles": self.particles,
            "seconds": round(self.seconds, 3),
            "source": self.source,
            "classes": [c.to_dict() for c in self.classes],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CycleQuality:
        """Read a cache file's content.

        Raises:
            ValueError: another layout version, or a missing key.
        """
        if int(data.get("version", 0)) != SCHEMA:
            raise ValueError(f"quality cache version {data.get('version')} (expected {SCHEMA})")
        try:
            return cls(
                cycle=int(data["cycle"]),
                box=int(data["box"]),
                pixel_size=float(data["pixel_size"]),
                mask_radius=float(data["mask_radius"]),
                cap=int(data["cap"]),
                particles=int(data["particles"]),
                classes=tuple(ClassQuality.from_dict(c) for c in data["classes"]),
                source={str(k): [int(x) for x in v] for k, v in data.get("source", {}).items()},
                seconds=float(data.get("seconds", 0.0)),
                threshold=float(data.get("threshold", THRESHOLD)),
                min_used=int(data.get("min_used", MIN_USED)),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"quality cache: missing or bad value ({exc})") from None


def file_identity(path: Path) -> list[int]:
    """[size, mtime_ns] of a file."""
    st = Path(path).stat()
    return [st.st_size, st.st_mtime_ns]


def read_cached(
    output_folder: Path, cycle: int, *, star: Path | None = None, classes: Path | None = None
) -> CycleQuality | None:
    """The cached estimate of ``cycle``; ``None`` when there is none, it cannot be read, or
    (when the cycle's files are given) it was computed from other versions of them."""
    path = cache_path(output_folder, cycle)
    try:
        quality = CycleQuality.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return None
    for source in (star, classes):
        if source is None:
            continue
        try:
            if quality.source.get(Path(source).name) != file_identity(source):
                return None
        except OSError:
            return None
    return quality


def write_cache(output_folder: Path, quality: CycleQuality) -> Path:
    """Write ``cycle_<N>.quality.json`` atomically; returns its path."""
    path = cache_path(output_folder, quality.cycle)
    atomic_write_json(path, quality.to_dict())
    return path


def evenly_spaced(count: int, cap: int) -> npt.NDArray[np.int64]:
    """Indices 0 … count−1, or ``cap`` of them evenly spaced when there are more."""
    if count <= cap:
        return np.arange(count, dtype=np.int64)
    return np.unique(np.linspace(0, count - 1, cap).round().astype(np.int64))


def half_set_curve(
    images: npt.NDArray[Any], rows: StarRows, pixel_size: float, mask: npt.NDArray[np.float64]
) -> resolution.F64:
    """FRC between the Wiener averages of the odd and the even particles, both masked."""
    halves = [resolution.wiener_average(images[k::2], rows[k::2], pixel_size) for k in (0, 1)]
    return resolution.frc(halves[0] * mask, halves[1] * mask)


def noise_sigma(box: int, mask: npt.NDArray[np.float64]) -> resolution.F64:
    """The standard deviation of the FRC per ring between two masked images of pure noise:
    1/√(2·n_r·f), with n_r the ring's Fourier pixels and f = Σ mask² / N² (measured on masked
    Wiener averages of noise in ``tests/results/test_quality.py``; the mask correlates
    neighbouring Fourier pixels, so a ring holds fewer independent samples than pixels)."""
    ky = np.fft.fftfreq(box) * box
    ring = np.rint(np.hypot(ky[None, :], ky[:, None])).astype(np.int64)
    counts = np.bincount(ring.ravel(), minlength=box // 2 + 1)[: box // 2 + 1].astype(np.float64)
    share = float((np.asarray(mask) ** 2).sum()) / box**2
    out: resolution.F64 = 1.0 / np.sqrt(np.maximum(2.0 * counts * share, 1e-12))
    return out


def figure(
    curve: resolution.F64,
    box: int,
    pixel_size: float,
    used: int,
    sigma: resolution.F64,
    *,
    min_used: int = MIN_USED,
) -> tuple[float | None, str]:
    """The resolution at FRC 0.143 and an empty reason, or ``None`` and why there is none.

    A figure needs ``min_used`` used particles, a crossing after ring :data:`MIN_RINGS`, and
    signal that noise does not make: at least :data:`SIGNIFICANT_RINGS` rings before the
    crossing where the curve exceeds three times the noise's standard deviation ``sigma``.
    """
    if used < min_used:
        return None, f"fewer than {min_used} used particles"
    ring = resolution.crossing_ring(curve, THRESHOLD)
    before = np.arange(1, min(ring, len(curve)))
    significant = int((curve[before] > 3.0 * sigma[before]).sum())
    if ring <= MIN_RINGS or significant < SIGNIFICANT_RINGS:
        return None, "no consistent signal"
    return resolution.crossing_resolution(curve, THRESHOLD, box, pixel_size), ""


def class_mask(box: int, mask_radius: float, pixel_size: float) -> npt.NDArray[np.float64]:
    """The soft circular mask at ``mask_radius`` Å (clipped to the box)."""
    radius = min(mask_radius / pixel_size, box / 2 - MASK_EDGE_PX)
    return imaging.soft_circular_mask(box, max(radius, 1.0), MASK_EDGE_PX)


def estimate_cycle(
    cycle: int,
    star: Path,
    classes: Path,
    stack: Path,
    *,
    mask_radius: float,
    cap: int = DEFAULT_CAP,
    pixel_size: float | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> CycleQuality:
    """Compute the estimate of every class of a cycle (blocking; seconds to minutes).

    Args:
        cycle: The cycle's number.
        star: Its ``cycle_<N>.star``.
        classes: Its ``cycle_<N>.mrc`` (gives K, the box and the pixel size).
        stack: The combined stack the star's positions index.
        mask_radius: The cycle's mask radius in Å.
        cap: Particles per class at most.
        pixel_size: Å per pixel (default: the class stack's header, else the stack's).
        should_stop: Checked between classes; True ends the computation early
            (:class:`InterruptedError`).

    Raises:
        OSError, ValueError: a file is missing or malformed.
        InterruptedError: ``should_stop`` said so.
    """
    started = time.monotonic()
    class_header = read_header(Path(classes))
    stack_header = read_header(Path(stack))
    k_classes, box = class_header.nz, class_header.nx
    if stack_header.nx != box:
        raise ValueError(f"{stack}: box {stack_header.nx}, the class averages have {box}")
    px = pixel_size or class_header.pixel_size or stack_header.pixel_size
    if not px or px <= 0:
        raise ValueError(f"{classes}: no pixel size in the header")
    rows = read_star(Path(star))
    counts = class_counts(rows["best_class"], k_classes)
    mask = class_mask(box, mask_radius, px)
    sigma = noise_sigma(box, mask)
    order = np.argsort(rows["position"], kind="stable")
    rows = rows[order]
    out: list[ClassQuality] = []
    for k in range(1, k_classes + 1):
        if should_stop():
            raise InterruptedError("stopped")
        used_rows = rows[rows["best_class"] == k]
        used = len(used_rows)
        score = float(used_rows["score"].mean()) if used else None
        if used < MIN_USED:
            out.append(
                ClassQuality(
                    k, counts.members[k], counts.used[k], 0, score, None,
                    f"fewer than {MIN_USED} used particles",
                )
            )  # fmt: skip
            continue
        picked = used_rows[evenly_spaced(used, cap)]
        images = read_scattered(Path(stack), stack_header, picked["position"].astype(np.int64))
        curve = half_set_curve(images, picked, px, mask)
        res, reason = figure(curve, box, px, used, sigma)
        out.append(
            ClassQuality(
                k, counts.members[k], counts.used[k], len(picked), score, res, reason,
                tuple(round(float(v), 4) for v in curve),
            )
        )  # fmt: skip
    return CycleQuality(
        cycle=cycle,
        box=box,
        pixel_size=float(px),
        mask_radius=float(mask_radius),
        cap=cap,
        particles=len(rows),
        classes=tuple(out),
        source={Path(star).name: file_identity(star), Path(classes).name: file_identity(classes)},
        seconds=time.monotonic() - started,
    )
