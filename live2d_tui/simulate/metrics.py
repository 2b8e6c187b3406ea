"""Numerical yardsticks of the scorer: partition metrics and angular spread.

Definitions (docs/simulation-and-scoring.md#per-class; purity, ARI and spread: #per-run):
- the FRC and its crossings live in :mod:`live2d_tui.resolution` (shared with the per-class
  half-set estimate); the scorer reports crossings at 0.5 against a noise-free reference and
  at 0.143 between noisy half-sets;
- purity = Σ_c max_v |M_c ∩ V_v| / N; adjusted Rand index (Hubert & Arabie 1985).
- angular spread of a class: median angle between its members' viewing directions and their
  normalised mean direction (optionally folding d and −d when mirrors are allowed).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


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
