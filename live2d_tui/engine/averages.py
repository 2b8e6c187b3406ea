"""Class averages from accumulated sums, and the class-average MRC writer.

Average (Wiener, per class and ring): A = S / (C + 1/τ²), with the signal power
τ²(ring) = (Σ|S|² − ΣC) / ΣC² — the noise in S has variance C because the sums are of whitened
data — so rings without signal are damped, the others barely regularised. The result is padded
to the full box, transformed back, and masked with the soft circular mask (20 Å falloff). Protein
is white; empty classes are all-zero slices at their own index.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import mrcfile
import numpy as np
import numpy.typing as npt

from live2d_tui import fourier as nm
from live2d_tui.atomic import create_temp_file
from live2d_tui.formats.live2d_dump import ClassSums
from live2d_tui.imaging import soft_circular_mask

MASK_FALLOFF = 20.0
"""Width of the mask's cosine edge (Å), fixed as in cisTEM."""


def class_averages(data: ClassSums) -> npt.NDArray[np.float32]:
    """(K, N, N) float32 class averages from the sums."""
    n, nb = data.box, data.binned_box
    rings = nm.ring_index(nb)
    weights = nm.half_weights(nb)
    count = rings.max() + 1
    out = np.zeros((data.n_classes, n, n), dtype=np.float32)
    mask = soft_circular_mask(n, data.mask_radius / data.pixel_size, MASK_FALLOFF / data.pixel_size)
    for k in range(data.n_classes):
        s, c = data.sums[k], data.ctf2[k]
        if data.class_weight[k] <= 0 or not np.any(c > 0):
            continue
        s2 = np.bincount(rings.ravel(), (weights * np.abs(s) ** 2).ravel(), count)
        c1 = np.bincount(rings.ravel(), (weights * c).ravel(), count)
        c2 = np.bincount(rings.ravel(), (weights * c * c).ravel(), count)
        with np.errstate(divide="ignore", invalid="ignore"):
            tau2 = np.where(c2 > 0, (s2 - c1) / c2, 0.0)
        reg = np.where(tau2 > 0, 1.0 / np.maximum(tau2, 1e-30), np.inf)[rings]
        with np.errstate(divide="ignore", invalid="ignore"):
            avg = np.where(np.isfinite(reg), s / (c + reg), 0.0)
        avg[0, 0] = s[0, 0] / c[0, 0] if c[0, 0] > 0 else 0.0
        image = np.fft.irfft2(nm.pad_half(avg, n), s=(n, n))
        out[k] = (image * mask).astype(np.float32)
    return out


def occupancy_lines(data: ClassSums) -> list[str]:
    """``Class = %4i, average occupancy = %10.4f`` for every class (percent of particles)."""
    total = max(data.processed, 1)
    return [
        f"Class = {k + 1:4d}, average occupancy = {100.0 * w / total:10.4f}"
        for k, w in enumerate(data.class_weight)
    ]


def write_mrc(path: str, images: npt.NDArray[np.float32], pixel_size: float) -> None:
    """Write a float32 MRC stack atomically with ``pixel_size`` in the header; ``/dev/null``
    writes nothing."""
    if path == "/dev/null":
        return
    target = Path(path)
    # a new file's mode (0666 less the umask), not mkstemp's 0600: the file becomes cycle_<N>.mrc
    fd, tmp = create_temp_file(target.parent, target.name)
    os.close(fd)
    try:
        with mrcfile.new(tmp, overwrite=True) as handle:
            handle.set_data(np.ascontiguousarray(images, dtype=np.float32))
            handle.voxel_size = pixel_size
            handle.header.ispg = 0
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        Path(tmp).replace(target)
    except BaseException:
        with contextlib.suppress(OSError):
            Path(tmp).unlink()
        raise
