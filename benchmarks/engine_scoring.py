"""Scoring a classification of a simulated session against its truth (benchmark helper).

Follows ../shared/reference/simulation-and-scoring.md §7.2: purity, adjusted Rand index and
views recovered on the partition (classes with k > 0 in the cycle star), and per class the FRC
of the class average against the clean true projection of its majority view, aligned over
in-plane rotations (5° then 1°) and shifts (FFT cross-correlation), inside a 0.45·N mask; the
resolution is the first ring where the FRC falls below 0.5. If the simulator's own scorer
(``live2d_tui.simulate.score``) exists it should be preferred; this one needs only the truth
files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mrcfile
import numpy as np
import numpy.typing as npt

from live2d_tui.dataset.cistem_star import read_star
from live2d_tui.engine import numerics as nm
from live2d_tui.imaging import fourier_shift


def _star_table(path: Path) -> tuple[list[str], list[list[str]]]:
    labels: list[str] = []
    rows: list[list[str]] = []
    in_loop = False
    for line in path.read_text().splitlines():
        s = line.strip()
        if s.startswith("data_"):  # a later block (e.g. particles after optics) replaces it
            labels, rows, in_loop = [], [], False
            continue
        if not in_loop:
            in_loop = s.startswith("loop_")
            continue
        if s.startswith("_"):
            labels.append(s.split()[0][1:])
        elif s and not s.startswith("#"):
            rows.append(s.split())
    return labels, rows


def truth_labels(out_folder: Path, session: Path) -> npt.NDArray[np.int64]:
    """True view id of every stack position (index = position − 1)."""
    view_of: dict[str, int] = {}
    for star in (session / "truth" / "particles").glob("*.star"):
        labels, rows = _star_table(star)
        name, view = labels.index("rlnImageName"), labels.index("simViewId")
        for row in rows:
            view_of[row[name]] = int(row[view])
    labels, rows = _star_table(out_folder / "combined_stack_relion.star")
    image, original = labels.index("rlnImageName"), labels.index("rlnImageOriginalName")
    out = np.full(len(rows), -1, dtype=np.int64)
    for row in rows:
        position = int(row[image].split("@")[0])
        out[position - 1] = view_of[row[original]]
    return out


def adjusted_rand_index(a: npt.NDArray[np.int64], b: npt.NDArray[np.int64]) -> float:
    """Hubert & Arabie's ARI of two labelings."""
    _, ai = np.unique(a, return_inverse=True)
    _, bi = np.unique(b, return_inverse=True)
    table = np.zeros((ai.max() + 1, bi.max() + 1))
    np.add.at(table, (ai, bi), 1)

    def comb(x: npt.NDArray[Any]) -> float:
        return float((x * (x - 1) / 2).sum())

    n = len(a)
    index = comb(table)
    expected = comb(table.sum(1)) * comb(table.sum(0)) / (n * (n - 1) / 2)
    maximum = 0.5 * (comb(table.sum(1)) + comb(table.sum(0)))
    return (index - expected) / (maximum - expected) if maximum != expected else 1.0


def frc(a: npt.NDArray[Any], b: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
    """Fourier ring correlation per integer ring (0 .. n//2)."""
    n = a.shape[0]
    fa, fb = np.fft.rfft2(a), np.fft.rfft2(b)
    rings = nm.ring_index(n).ravel()
    w = nm.half_weights(n).ravel()
    num = np.bincount(rings, (w * (fa * np.conj(fb)).real.ravel()))
    da = np.bincount(rings, (w * np.abs(fa).ravel() ** 2))
    db = np.bincount(rings, (w * np.abs(fb).ravel() ** 2))
    out: npt.NDArray[np.float64] = num / np.sqrt(np.maximum(da * db, 1e-30))
    return out[: n // 2 + 1]


def align(average: npt.NDArray[Any], reference: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
    """The reference rotated/shifted to best match the average (max correlation): rotations in
    5° then 0.5° steps, shifts to sub-pixel precision (parabolic peak, exact Fourier shift)."""
    n = average.shape[0]
    fa = np.fft.rfft2(average)

    def best_at(angles: npt.NDArray[np.float64]) -> tuple[float, float, npt.NDArray[Any]]:
        top: tuple[float, float, npt.NDArray[Any]] = (-np.inf, 0.0, np.zeros((n, n)))
        for angle in angles:
            r = nm.rotate_image(reference, float(angle))
            cc = np.fft.irfft2(fa * np.conj(np.fft.rfft2(r)), s=(n, n))
            value = float(cc.max() / (np.linalg.norm(r) + 1e-30))
            if value > top[0]:
                top = (value, float(angle), cc)
        return top

    _, angle, _ = best_at(np.arange(0.0, 360.0, 5.0))
    _, angle, cc = best_at(angle + np.arange(-4.5, 4.75, 0.5))
    k = int(cc.argmax())
    dy, dx = divmod(k, n)

    def sub(left: float, centre: float, right: float) -> float:
        denom = left - 2 * centre + right
        return float(np.clip(0.5 * (left - right) / denom, -0.5, 0.5)) if denom < 0 else 0.0

    ox = sub(cc[dy, (dx - 1) % n], cc[dy, dx], cc[dy, (dx + 1) % n])
    oy = sub(cc[(dy - 1) % n, dx], cc[dy, dx], cc[(dy + 1) % n, dx])
    sx = (dx if dx <= n // 2 else dx - n) + ox
    sy = (dy if dy <= n // 2 else dy - n) + oy
    return fourier_shift(nm.rotate_image(reference, angle), sx, sy)


def score_run(
    classes_mrc: Path, cycle_star: Path, dataset: Any, session: Path, *, high_res: float
) -> dict[str, Any]:
    """Scorecard of the final cycle (see the module docstring)."""
    labels_all = truth_labels(dataset.output_folder, session)
    rows = read_star(cycle_star)
    assigned = rows["best_class"] > 0
    cls = rows["best_class"][assigned]
    truth = labels_all[rows["position"][assigned] - 1]
    purity_sum = 0
    views_found: set[int] = set()
    majority: dict[int, int] = {}
    for k in np.unique(cls):
        members = truth[cls == k]
        counts = np.bincount(members)
        purity_sum += int(counts.max())
        majority[int(k)] = int(counts.argmax())
        if counts.max() >= 0.5 * len(members):
            views_found.add(int(counts.argmax()))
    n_views = int(labels_all.max()) + 1
    with mrcfile.open(classes_mrc, permissive=True) as mrc:
        averages = np.asarray(mrc.data, dtype=np.float64)
    with mrcfile.open(session / "truth" / "references.mrcs", permissive=True) as mrc:
        references = np.asarray(mrc.data, dtype=np.float64)
    box = averages.shape[-1]
    pixel = float(rows["pixel_size"][0])
    mask = nm.soft_mask(box, 0.45 * box, 3.0)
    resolutions: dict[int, float] = {}
    for k, view in majority.items():
        average = averages[k - 1] * mask
        ref = align(average, references[view]) * mask
        curve = frc(average, ref)
        below = np.flatnonzero(curve[1:] < 0.5)
        ring = int(below[0]) + 1 if len(below) else box // 2 + 1
        resolutions[k] = box * pixel / max(ring - 1, 1) if ring > 1 else float("inf")
    values = np.array(list(resolutions.values()))
    return {
        "assigned": int(assigned.sum()),
        "classes_used": len(majority),
        "purity": purity_sum / max(len(cls), 1),
        "ari": adjusted_rand_index(cls, truth),
        "views_recovered": f"{len(views_found)}/{n_views}",
        "frc05_median_A": float(np.median(values)) if len(values) else None,
        "frc05_worst_A": float(values.max()) if len(values) else None,
        "frc05_classes_at_limit": int(np.sum(values <= high_res * 1.05)),
        "frc05_per_class_A": {str(k): round(v, 2) for k, v in sorted(resolutions.items())},
    }
