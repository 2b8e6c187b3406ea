"""Small synthetic particle sets for the engine tests (no dependency on the simulator).

Each "view" is a clean, positive, asymmetric 2D image (a sum of Gaussian blobs); a particle is a
view rotated by +psi about (N//2, N//2), moved by ``shifts`` = (+dx, +dy) pixels, multiplied by
a CTF in RELION's convention (protein white), plus white Gaussian noise of variance
var(CTF-modulated clean image) / SNR, then normalised. Returned with its 22-column cisTEM star
(no poses in it: in cisTEM's convention the true star shifts are −shifts × pixel size, see
:func:`true_star_shifts`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import mrcfile
import numpy as np
import numpy.typing as npt

from live2d_tui.ctf import ctf_2d
from live2d_tui.formats.cistem_star import empty_rows, write_star
from live2d_tui.fourier import rotate_image
from live2d_tui.imaging import fourier_shift


@dataclass
class SynthSet:
    stack: Path
    star: Path
    views: npt.NDArray[np.float64]
    labels: npt.NDArray[np.int64]
    psi: npt.NDArray[np.float64]
    shifts: npt.NDArray[np.float64]
    pixel_size: float


def true_star_shifts(data: SynthSet) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """(x_shift, y_shift) in Å that cisTEM's refine2d writes for the set's true poses: a
    particle moved by +d from its turned view has star shift −d (:mod:`live2d_tui.imaging`)."""
    return -data.shifts[:, 0] * data.pixel_size, -data.shifts[:, 1] * data.pixel_size


def make_views(n_views: int, box: int, rng: np.random.Generator) -> npt.NDArray[np.float64]:
    """``n_views`` distinct asymmetric blob images, (n_views, box, box)."""
    y, x = np.indices((box, box), dtype=np.float64)
    views = np.zeros((n_views, box, box))
    for v in range(n_views):
        for j in range(7):
            r = rng.uniform(0, 0.22 * box) if j else 0.0
            a = rng.uniform(0, 2 * np.pi)
            cx, cy = box // 2 + r * np.cos(a), box // 2 + r * np.sin(a)
            sigma = rng.uniform(0.03, 0.07) * box if j else 0.09 * box
            amp = rng.uniform(0.5, 1.0)
            views[v] += amp * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sigma**2))
    return views


def make_set(
    folder: Path,
    *,
    n_particles: int,
    box: int = 64,
    pixel_size: float = 3.0,
    n_views: int = 4,
    snr: float = 0.1,
    seed: int = 0,
    max_shift: float = 3.0,
    ctf: bool = True,
) -> SynthSet:
    rng = np.random.default_rng(seed)
    views = make_views(n_views, box, rng)
    labels = rng.integers(0, n_views, n_particles)
    psi = rng.uniform(0, 360, n_particles)
    shifts = rng.uniform(-max_shift, max_shift, (n_particles, 2))
    du = rng.uniform(8000, 25000, n_particles)
    dv = du - rng.uniform(0, 500, n_particles)
    ang = rng.uniform(0, 180, n_particles)
    images = np.zeros((n_particles, box, box), dtype=np.float32)
    for i in range(n_particles):
        clean = fourier_shift(rotate_image(views[labels[i]], psi[i]), shifts[i, 0], shifts[i, 1])
        if ctf:
            c = ctf_2d(box, pixel_size, du[i], dv[i], ang[i])
            clean = np.fft.irfft2(np.fft.rfft2(clean) * c, s=(box, box))
        noise = rng.normal(0.0, np.sqrt(clean.var() / snr), (box, box))
        img = clean + noise
        images[i] = ((img - img.mean()) / img.std()).astype(np.float32)
    stack = folder / "particles.mrcs"
    with mrcfile.new(stack, overwrite=True) as handle:
        handle.set_data(images)
        handle.voxel_size = pixel_size
    rows = empty_rows(n_particles)
    rows["position"] = np.arange(1, n_particles + 1)
    rows["defocus_1"] = du if ctf else 0.0
    rows["defocus_2"] = dv if ctf else 0.0
    rows["defocus_angle"] = ang
    rows["pixel_size"] = pixel_size
    rows["voltage"] = 300.0
    rows["sigma"] = 10.0
    star = folder / "particles.star"
    write_star(star, rows)
    return SynthSet(stack, star, views, labels, psi, shifts, pixel_size)
