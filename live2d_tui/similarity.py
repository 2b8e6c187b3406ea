"""How alike class averages are, whatever their in-plane pose; which slots hold an average.

Used on both sides of the protocol: by our ``refine2d`` (:mod:`live2d_tui.engine.refine2d`),
which empties a small class that is a copy of a larger one, and by the streaming runner
(:mod:`live2d_tui.classify.streaming`), which gives a view that appears late a free slot (an
empty one, or the smaller of two copies) and reports how far each class moved between updates.
Both must agree on what a copy is, so the measure and its threshold live here, on the shared
ground below both (they import nothing but :mod:`live2d_tui.fourier`).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from live2d_tui import fourier as nm

COPY_CORRELATION = 0.88
"""Aligned correlation (:func:`aligned_similarity`, from the engine's ``COPY_LOW_RESOLUTION``
to the working limit) from which a class counts as a copy of another. Measured on the
reference-shaped session (12 views, 20 classes): copies of one view 0.92-0.97 at 8 Å and
0.895-0.99 at 15 Å; different views at most 0.72 at 8 Å and 0.79 at 15 Å. On the harder session
(continuous orientations, 50 classes), neighbouring classes reach 0.84 at 8 Å (but none is small
enough to be a candidate)."""


def filled(references: npt.NDArray[np.floating]) -> npt.NDArray[np.bool_]:
    """(K,) which references hold a class average; an all-zero slice is an empty class."""
    mask: npt.NDArray[np.bool_] = np.abs(references).reshape(len(references), -1).max(axis=1) > 0
    return mask


def aligned_similarity(
    references: npt.NDArray[np.float32],
    which: npt.NDArray[np.int64],
    pixel: float,
    band: tuple[float, float],
    *,
    step: float = 3.0,
    max_shift: float = 3.0,
) -> npt.NDArray[np.float64]:
    """How alike classes are, whatever their in-plane pose: (len(which), K), the largest
    normalised correlation of class ``which[i]`` with class j, in the resolution ``band`` (low,
    high) Å, over rotations of j every ``step`` degrees (a fixed grid, so every program run of a
    cycle gets the same numbers) and shifts up to ``max_shift`` pixels of that band's working box;
    −1 for j itself and for empty classes."""
    k, n = len(references), references.shape[-1]
    low, high = band
    nb = nm.binned_box(n, pixel, high)
    keep = nm.band_mask(nb, n * pixel, low, high)
    whole = nm.crop_half(np.fft.rfft2(references.astype(np.float64)), nb)
    weights = nm.half_weights(nb)
    norm = np.sqrt((np.abs(whole * keep) ** 2 * weights).sum(axis=(-2, -1)))
    full = filled(references) & (norm > 0)
    whole[full] /= norm[full, None, None]
    out = np.full((len(which), k), -1.0)
    others = np.flatnonzero(full)
    if len(others) == 0 or len(which) == 0:
        return out
    angles = np.arange(0.0, 360.0, step)
    # rotated before the band is applied: a band-passed image rings over the whole box, and
    # rotating it would wrap its corners around
    turned = nm.rotate_half_spectra(whole[others][:, None], angles) * keep  # (J, R, nb, ...)
    spectra = whole * keep
    window = nm.shift_window(nb, max_shift)
    for row, i in enumerate(which):
        if not full[i]:
            continue
        maps = np.fft.irfft2(spectra[i] * np.conj(turned), s=(nb, nb)) * float(nb * nb)
        best = maps.reshape(len(others), len(angles), -1)[:, :, window].max(axis=(1, 2))
        out[row, others] = best
        out[row, i] = -1.0
    return out
