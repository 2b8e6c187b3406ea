"""How far each class average moved in the class frame from one update to the next.

Every block's sums are in the frame of the references it was aligned to; if a class's frame
moved between updates (auto-centre shifts the input references; nothing else pins a frame), the
earlier blocks' sums and the new ones would be misaligned. Streaming therefore never auto-centres,
and each update registers every new average to the previous one: the in-plane rotation (±
:data:`MAX_ANGLE`) and shift that best superpose them, in the band from :data:`LOW_RES` to the
working limit. The drift is reported (not corrected: correcting would need every block's sums
moved alike); a class that moves more than :data:`WARN_PIXELS` in one update is named in the
log.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from live2d_tui import fourier as nm
from live2d_tui.similarity import filled

MAX_ANGLE = 10.0
"""Degrees searched either way."""
ANGLE_STEP = 0.5
LOW_RES = 100.0
WARN_PIXELS = 1.0


@dataclass(frozen=True)
class Drift:
    """The move of one class between two updates (new ≈ previous turned and shifted)."""

    cls: int
    """1-based class number."""
    angle: float
    """Degrees."""
    dx: float
    """Pixels of the full box."""
    dy: float
    correlation: float

    @property
    def shift(self) -> float:
        return float(np.hypot(self.dx, self.dy))


@dataclass(frozen=True)
class DriftReport:
    """Every class's drift; summaries for the log."""

    classes: tuple[Drift, ...]

    @property
    def max_shift(self) -> float:
        return max((d.shift for d in self.classes), default=0.0)

    @property
    def median_shift(self) -> float:
        return float(np.median([d.shift for d in self.classes])) if self.classes else 0.0

    @property
    def max_angle(self) -> float:
        return max((abs(d.angle) for d in self.classes), default=0.0)

    def moved(self, pixels: float = WARN_PIXELS) -> list[Drift]:
        return [d for d in self.classes if d.shift > pixels]

    def summary(self) -> str:
        return (
            f"class frame drift: median {self.median_shift:.2f} px, max {self.max_shift:.2f} px, "
            f"max rotation {self.max_angle:.1f}° over {len(self.classes)} classes"
        )


def register(
    previous: npt.NDArray[np.float32],
    new: npt.NDArray[np.float32],
    pixel_size: float,
    high_res: float,
) -> DriftReport:
    """Drift of every class that holds an average in both stacks (K, N, N)."""
    n = previous.shape[-1]
    both = np.flatnonzero(filled(previous) & filled(new))
    if len(both) == 0:
        return DriftReport(())
    nb = nm.binned_box(n, pixel_size, max(high_res, 2.0 * pixel_size))
    scale = n / nb
    keep = nm.band_mask(nb, n * pixel_size, LOW_RES, max(high_res, 2.0 * pixel_size))
    weights = nm.half_weights(nb) * keep
    old = nm.crop_half(np.fft.rfft2(previous[both].astype(np.float64)), nb)
    fresh = nm.crop_half(np.fft.rfft2(new[both].astype(np.float64)), nb)
    angles = np.arange(-MAX_ANGLE, MAX_ANGLE + ANGLE_STEP / 2, ANGLE_STEP)
    turned = nm.rotate_half_spectra(old[:, None], angles)  # (J, A, nb, nb//2+1)
    window = nm.shift_window(nb, max(2.0, nb / 8))
    out: list[Drift] = []
    for j, cls in enumerate(both):
        a = fresh[j] * keep
        b = turned[j] * keep
        norm = np.sqrt(
            (np.abs(a) ** 2 * weights).sum() * (np.abs(b) ** 2 * weights).sum(axis=(-2, -1))
        )
        maps = np.fft.irfft2(a * np.conj(b), s=(nb, nb)) * float(nb * nb)
        flat = maps.reshape(len(angles), -1)[:, window]
        best_angle = int(np.argmax(flat.max(axis=1) / np.maximum(norm, 1e-30)))
        peak = window[int(np.argmax(flat[best_angle]))]
        ty, tx = divmod(int(peak), nb)
        plane = maps[best_angle]
        dx = tx + _parabola(plane[ty, (tx - 1) % nb], plane[ty, tx], plane[ty, (tx + 1) % nb])
        dy = ty + _parabola(plane[(ty - 1) % nb, tx], plane[ty, tx], plane[(ty + 1) % nb, tx])
        dx = dx - nb if dx > nb / 2 else dx
        dy = dy - nb if dy > nb / 2 else dy
        correlation = float(plane[ty, tx] / max(norm[best_angle], 1e-30))
        out.append(
            Drift(int(cls) + 1, float(angles[best_angle]), dx * scale, dy * scale, correlation)
        )
    return DriftReport(tuple(out))


def _parabola(left: float, centre: float, right: float) -> float:
    denom = left - 2.0 * centre + right
    if denom >= 0:
        return 0.0
    return float(np.clip(0.5 * (left - right) / denom, -0.5, 0.5))
