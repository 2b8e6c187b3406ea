"""Particle input: the stack, the star rows of a run, and per-particle preprocessing.

Preprocessing follows cisTEM's refine2d (docs/engine.md#preparing-the-particles): each particle is
resampled from its star ``_cisTEMPixelSize`` to the working pixel size (Fourier crop/pad in the same
box; a no-op within 0.1 %), its sign is flipped unless "Invert particle contrast" is Yes (so protein
is white afterwards), and with "Normalize" it is normalised to zero mean and unit standard deviation
of the pixels outside the mask, then whitened by the radial noise spectrum estimated from a
deterministic sample of the whole stack (so every program run of a cycle uses the same whitening).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mrcfile
import numpy as np
import numpy.typing as npt

from live2d_tui import fourier as nm
from live2d_tui.formats import engine_rules as rules
from live2d_tui.imaging import fourier_crop, radius_grid

NOISE_SAMPLE = rules.NOISE_SAMPLE
"""Particles sampled (evenly over the whole star) for the noise power spectrum."""


class EngineInputError(RuntimeError):
    """A calculation cannot proceed (bad input files or parameters); exit non-zero."""


def open_stack(path: str) -> Any:
    """Memory-map an MRC stack read-only; returns the (n, N, N) data array."""
    try:
        handle = mrcfile.mmap(path, mode="r", permissive=True)
    except (OSError, ValueError) as exc:
        raise EngineInputError(f"cannot read particle stack {path}: {exc}") from None
    data = handle.data
    if data is None:
        raise EngineInputError(f"particle stack {path} has no data")
    if data.ndim == 2:
        data = data[None]
    if data.shape[-1] != data.shape[-2]:
        raise EngineInputError(f"particle stack {path} is not square: {data.shape}")
    return data


@dataclass(frozen=True)
class Preprocess:
    """How raw stack images become working images (box N at the working pixel size)."""

    box: int
    pixel_size: float
    mask_radius_px: float
    invert: bool
    normalize: bool

    def outside(self) -> npt.NDArray[np.bool_]:
        """Pixels outside the particle mask (used for per-particle normalisation)."""
        out: npt.NDArray[np.bool_] = radius_grid(self.box) > min(
            self.mask_radius_px, 0.45 * self.box
        )
        return out

    def apply(
        self, raw: npt.NDArray[Any], star_pixel: npt.NDArray[np.float64]
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float64]]:
        """Resample, set the sign and normalise a batch; returns (images, noise σ before
        normalisation)."""
        images = np.array(raw, dtype=np.float32)
        for px in np.unique(star_pixel):
            if px <= 0 or abs(px / self.pixel_size - 1.0) <= 1e-3:
                continue
            sel = star_pixel == px
            images[sel] = resample(images[sel], float(px), self.pixel_size)
        if not self.invert:
            images = -images
        outside = self.outside()
        edge = images[:, outside]
        mean = edge.mean(axis=1)
        std = edge.std(axis=1).astype(np.float64)
        images -= mean[:, None, None]
        if self.normalize:
            images /= np.maximum(std, 1e-12).astype(np.float32)[:, None, None]
        return images, std


def resample(images: npt.NDArray[np.float32], from_px: float, to_px: float) -> Any:
    """Resample a batch from ``from_px`` to ``to_px`` in the same box (Fourier crop/pad, then a
    centred real-space crop/pad)."""
    n = images.shape[-1]
    m = nm.even(n * from_px / to_px)
    scaled = fourier_crop(images, m)
    out = np.zeros_like(images)
    if m >= n:
        lo = m // 2 - n // 2
        out[:] = scaled[:, lo : lo + n, lo : lo + n]
    else:
        lo = n // 2 - m // 2
        out[:, lo : lo + m, lo : lo + m] = scaled
    return out


def noise_spectrum(
    stack: Any,
    positions: npt.NDArray[np.int64],
    star_pixel: npt.NDArray[np.float64],
    prep: Preprocess,
    nb: int,
) -> npt.NDArray[np.float64]:
    """Radial noise power on the (nb, nb//2+1) grid, from the pixels outside the mask.

    ``positions`` are 1-based stack positions of all star rows; an even sample of at most
    :data:`NOISE_SAMPLE` of them is used, so every program run of a cycle gets the same answer.
    """
    pick = rules.noise_sample(positions)
    outside = prep.outside().astype(np.float32)
    area = float(np.mean(outside**2))
    rings = nm.ring_index(nb)
    total = np.zeros(rings.max() + 1)
    for start in range(0, len(pick), 128):
        idx = pick[start : start + 128]
        images, _ = prep.apply(read_images(stack, positions[idx]), star_pixel[idx])
        spectra = nm.crop_half(np.fft.rfft2(images * outside), nb)
        power = np.abs(spectra) ** 2
        total += nm.ring_average(power.mean(axis=0)[None], nb)[0] * len(idx)
    power_rings = total / len(pick) / max(area, 1e-6)
    if not prep.normalize:
        flat = float(np.mean(power_rings[1 : nb // 2 + 1]))
        power_rings[:] = flat
    power_rings[0] = power_rings[1] if len(power_rings) > 1 else power_rings[0]
    out: npt.NDArray[np.float64] = np.maximum(power_rings, 1e-12 * power_rings.max())[rings]
    return out


def read_images(stack: Any, positions: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
    """Read slices at 1-based ``positions`` (sorted runs are read as contiguous blocks)."""
    pos = np.asarray(positions, dtype=np.int64) - 1
    if len(pos) == 0:
        return np.zeros((0, *stack.shape[1:]), dtype=np.float32)
    if pos.min() < 0 or pos.max() >= stack.shape[0]:
        raise EngineInputError(
            f"star refers to stack position {int(pos.max()) + 1} but the stack has "
            f"{stack.shape[0]} images"
        )
    if np.all(np.diff(pos) == 1):
        return np.asarray(stack[pos[0] : pos[-1] + 1], dtype=np.float32)
    return np.asarray(stack[pos], dtype=np.float32)


def has_blank_edges(images: npt.NDArray[np.float32]) -> npt.NDArray[np.bool_]:
    """Images with a constant side (first/last row or column): cut off at a micrograph edge."""
    scale = np.maximum(images.reshape(len(images), -1).std(axis=1), 1e-30)
    sides = (images[:, 0, :], images[:, -1, :], images[:, :, 0], images[:, :, -1])
    blank = np.zeros(len(images), dtype=bool)
    for side in sides:
        blank |= side.std(axis=1) <= 1e-6 * scale
    return blank


def load_references(path: str, box: int) -> npt.NDArray[np.float32]:
    """Read class averages (K, N, N); they must have the particles' box."""
    p = Path(path)
    if not p.is_file():
        raise EngineInputError(f"Input class averages {path} not found")
    try:
        with mrcfile.open(path, mode="r", permissive=True) as handle:
            data = np.array(handle.data, dtype=np.float32)
    except (OSError, ValueError) as exc:
        raise EngineInputError(f"cannot read class averages {path}: {exc}") from None
    if data.ndim == 2:
        data = data[None]
    if data.shape[-2:] != (box, box):
        raise EngineInputError(f"class averages {path} have box {data.shape[-1]}, particles {box}")
    return data
