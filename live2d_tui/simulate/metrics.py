"""Numerical yardsticks of the scorer: FRC and its crossings, partition metrics, angular spread.

Definitions (docs/simulation-and-scoring.md#per-class; purity, ARI and spread: #per-run):
- FRC(r) = Re Σ_ring A·B* / √(Σ|A|² Σ|B|²) on integer rings of the ``fftfreq·N`` grid; ring r
  is N·pixel/r Å. A resolution is reported at the first ring (from r = 1) where the curve falls
  below the threshold (0.5 against a noise-free reference, 0.143 between noisy half-sets); a
  curve that never falls below it scores Nyquist (2·pixel).
- purity = Σ_c max_v |M_c ∩ V_v| / N; adjusted Rand index (Hubert & Arabie 1985).
- angular spread of a class: median angle between its members' viewing directions and their
  normalised mean direction (optionally folding d and −d when mirrors are allowed).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


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


def crossing_resolution(curve: F64, threshold: float, box: int, pixel_size: float) -> float:
    """Resolution (Å) at the first ring r ≥ 1 whose FRC falls below ``threshold``: N·px/r."""
    for r in range(1, len(curve)):
        if curve[r] < threshold:
            return float(box * pixel_size / r)
    return float(2.0 * pixel_size)


def purity(labels_true: I64, labels_pred: I64) -> float:
    """Σ over predicted groups of their largest true-label count, divided by N."""
    if len(labels_true) == 0:
        return 0.0
    total = 0
    for c in np.unique(labels_pred):
        _, counts = np.unique(labels_true[labels_pred == c], return_counts=True)
        total += int(counts.max())
    return total / len(labels_true)


def adjusted_rand_index(labels_true: I64, labels_pred: I64) -> float:
    """Hubert & Arabie's adjusted Rand index of two labelings (1 = identical, ≈0 = chance)."""
    n = len(labels_true)
    if n < 2:
        return 1.0
    _, t = np.unique(labels_true, return_inverse=True)
    _, p = np.unique(labels_pred, return_inverse=True)
    table = np.zeros((t.max() + 1, p.max() + 1), dtype=np.float64)
    np.add.at(table, (t, p), 1.0)

    def pairs(x: F64) -> float:
        return float((x * (x - 1.0) / 2.0).sum())

    index = pairs(table)
    rows = pairs(table.sum(axis=1))
    cols = pairs(table.sum(axis=0))
    expected = rows * cols / (n * (n - 1) / 2.0)
    maximum = 0.5 * (rows + cols)
    if maximum == expected:
        return 1.0
    return float((index - expected) / (maximum - expected))


def angular_spread(directions: F64, *, fold_mirrors: bool = False) -> tuple[float, float]:
    """(median angle in degrees to the mean direction, fraction of members within 15°)."""
    d = directions / np.linalg.norm(directions, axis=1, keepdims=True)
    if fold_mirrors:
        # orient every direction into the hemisphere of the principal axis before averaging
        _, _, vt = np.linalg.svd(d, full_matrices=False)
        d = d * np.where(d @ vt[0] < 0, -1.0, 1.0)[:, None]
    mean = d.sum(axis=0)
    norm = np.linalg.norm(mean)
    if norm == 0:
        return 180.0, 0.0
    cosines = np.clip(d @ (mean / norm), -1.0, 1.0)
    if fold_mirrors:
        cosines = np.abs(cosines)
    angles = np.rad2deg(np.arccos(cosines))
    return float(np.median(angles)), float(np.mean(angles < 15.0))
