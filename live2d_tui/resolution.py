"""Fourier ring correlation and the CTF-corrected class-frame average of star rows.

One place for the measurement that the scorer (:mod:`live2d_tui.simulate.score`) and the
per-class half-set estimate (:mod:`live2d_tui.results.quality`) share, so both compute the same
number from the same rows:

- ``frc(a, b)``: FRC(r) = Re Σ_ring A·B* / √(Σ|A|² Σ|B|²) on integer rings of the
  ``fftfreq·N`` grid (ring r is N·pixel/r Å), rings 0 … N//2;
- ``crossing_resolution(curve, t, N, px)``: the resolution at the first ring r ≥ 1 whose value
  falls below ``t``; a curve that never does gives Nyquist (2·pixel);
- ``wiener_average(images, rows, px)``: Σ to_class_frame(CTF·F) / (Σ CTF²_isotropic + c), each
  CTF-weighted particle brought into its class frame by the star's psi and shifts through
  :func:`live2d_tui.imaging.to_class_frame` (cisTEM refine2d's convention, docs/conventions.md).

Star rows are the structured arrays of :mod:`live2d_tui.formats.cistem_star` (fields ``psi``,
``x_shift``, ``y_shift`` in Å and the CTF columns); they are typed loosely here so this shared
module needs nothing above the ground floor.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from live2d_tui import imaging
from live2d_tui.ctf import star_ctfs

F64 = npt.NDArray[np.float64]


def frc(a: npt.NDArray[Any], b: npt.NDArray[Any]) -> F64:
    """FRC curve of two (N, N) images for rings 0 … N//2 (ring 0 is the mean)."""
    n = a.shape[-1]
    fa = np.fft.rfft2(np.asarray(a, dtype=np.float64))
    fb = np.fft.rfft2(np.asarray(b, dtype=np.float64))
    ky = np.fft.fftfreq(n) * n
    kx = np.fft.rfftfreq(n) * n
    ring = np.rint(np.hypot(kx[None, :], ky[:, None])).astype(np.int64)
    # the rfft half-plane holds each Hermitian pair once, except columns 0 (and N/2), which
    # hold both members; weighting the others by 2 gives full-plane sums
    weight = np.full(ring.shape, 2.0)
    weight[:, 0] = 1.0
    if n % 2 == 0:
        weight[:, -1] = 1.0
    keep = ring <= n // 2
    r, w = ring[keep], weight[keep]
    cross = np.bincount(r, weights=w * (fa * np.conj(fb)).real[keep], minlength=n // 2 + 1)
    pa = np.bincount(r, weights=w * np.abs(fa[keep]) ** 2, minlength=n // 2 + 1)
    pb = np.bincount(r, weights=w * np.abs(fb[keep]) ** 2, minlength=n // 2 + 1)
    denom = np.sqrt(pa * pb)
    out: F64 = np.divide(cross, denom, out=np.zeros_like(cross), where=denom > 0)
    return out


def crossing_ring(curve: F64, threshold: float) -> int:
    """The first ring r ≥ 1 whose value falls below ``threshold`` (``len(curve)`` if none)."""
    for r in range(1, len(curve)):
        if curve[r] < threshold:
            return r
    return len(curve)


def crossing_resolution(curve: F64, threshold: float, box: int, pixel_size: float) -> float:
    """Resolution (Å) at the first ring r ≥ 1 whose FRC falls below ``threshold``: N·px/r."""
    r = crossing_ring(curve, threshold)
    if r >= len(curve):
        return float(2.0 * pixel_size)
    return float(box * pixel_size / r)


def wiener_average(
    images: npt.NDArray[Any],
    rows: npt.NDArray[Any],
    pixel_size: float,
    *,
    constant: float = 1.0,
    chunk: int = 256,
) -> F64:
    """CTF-corrected average of particles in their class frame, from the star's psi, shifts
    (Å) and CTF: Σ to_class_frame(CTF·F) / (Σ CTF²_isotropic + constant).

    The sums run over ``chunk`` particles at a time, so memory stays bounded whatever the
    number of particles (the result does not depend on ``chunk``)."""
    n = images.shape[-1]
    total = np.zeros((n, n))
    denominator = np.full((n, n // 2 + 1), float(constant))
    for start in range(0, len(rows), max(1, chunk)):
        part = slice(start, start + max(1, chunk))
        block, block_rows = np.asarray(images[part], dtype=np.float64), rows[part]
        ctf = star_ctfs(block_rows, n, pixel_size)
        weighted = np.fft.irfft2(np.fft.rfft2(block) * ctf, s=(n, n))
        framed = imaging.to_class_frame(
            weighted,
            block_rows["psi"],
            block_rows["x_shift"] / pixel_size,
            block_rows["y_shift"] / pixel_size,
        )
        total += np.asarray(framed, dtype=np.float64).sum(axis=0)
        ctf_iso = star_ctfs(block_rows, n, pixel_size, isotropic=True)
        denominator += (np.asarray(ctf_iso) ** 2).sum(axis=0)
    out: F64 = np.fft.irfft2(np.fft.rfft2(total) / denominator, s=(n, n))
    return out
