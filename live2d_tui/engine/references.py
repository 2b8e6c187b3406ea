"""Preparing input class averages as references: auto-centre, auto-mask, soft circular mask.

- **auto-centre** (#22): each non-empty class is moved (exact Fourier shift) so the centre of
  mass of its positive density, low-passed to the high-resolution limit, sits at (N//2, N//2);
  moves larger than a quarter box are not trusted and skipped;
- **auto-mask** (#21): the connected region of the low-passed class above 20 % of its maximum
  that contains the centre, dilated by 2 working pixels and given a soft edge, multiplies the
  class (an empty or whole-box region leaves the class unmasked);
- then every class is multiplied by the soft circular mask (radius #11, 20 Å cosine falloff).

Empty (all-zero) classes stay zero.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from live2d_tui.engine import numerics as nm
from live2d_tui.engine.averages import MASK_FALLOFF
from live2d_tui.imaging import fourier_shift, soft_circular_mask


def filled(references: npt.NDArray[np.floating]) -> npt.NDArray[np.bool_]:
    """(K,) which references hold a class average; an all-zero slice is an empty class."""
    mask: npt.NDArray[np.bool_] = np.abs(references).reshape(len(references), -1).max(axis=1) > 0
    return mask


def _lowpass(image: npt.NDArray[np.float64], pixel: float, high: float) -> npt.NDArray[np.float64]:
    n = image.shape[-1]
    r = nm.radius_half(n)
    spectrum = np.fft.rfft2(image) * (r <= n * pixel / high)
    out: npt.NDArray[np.float64] = np.fft.irfft2(spectrum, s=(n, n))
    return out


def centre_of_mass_shift(
    image: npt.NDArray[np.float64], pixel: float, high: float
) -> tuple[float, float]:
    """(dx, dy) in pixels that moves the positive density's centre of mass to (N//2, N//2)."""
    n = image.shape[-1]
    smooth = np.clip(_lowpass(image, pixel, high), 0.0, None)
    total = smooth.sum()
    if total <= 0:
        return 0.0, 0.0
    y, x = np.indices((n, n))
    cy = float((smooth * y).sum() / total)
    cx = float((smooth * x).sum() / total)
    return n // 2 - cx, n // 2 - cy


def automask(image: npt.NDArray[np.float64], pixel: float, high: float) -> npt.NDArray[np.float64]:
    """A soft mask around the particle's connected density (see the module docstring)."""
    from scipy import ndimage  # imported here: 0.2 s per process that only auto-masking needs

    n = image.shape[-1]
    smooth = _lowpass(image, pixel, high)
    peak = smooth.max()
    if peak <= 0:
        return np.ones((n, n))
    labels, _ = ndimage.label(smooth > 0.2 * peak)
    centre = labels[n // 2, n // 2]
    if centre == 0:
        centre = labels.ravel()[int(np.argmax(smooth))]
    region = labels == centre
    if region.mean() > 0.9:
        return np.ones((n, n))
    region = ndimage.binary_dilation(region, iterations=2)
    soft: npt.NDArray[np.float64] = ndimage.gaussian_filter(region.astype(np.float64), 1.5)
    return np.clip(soft * 1.5, 0.0, 1.0)


def prepare_references(
    references: npt.NDArray[np.float32],
    pixel: float,
    mask_radius: float,
    high: float,
    *,
    autocenter: bool,
    automask: bool,
) -> npt.NDArray[np.float32]:
    """References ready for the search, (K, N, N) float32."""
    n = references.shape[-1]
    mask = soft_circular_mask(n, mask_radius / pixel, MASK_FALLOFF / pixel)
    out = np.zeros_like(references, dtype=np.float32)
    for k, ref in enumerate(references):
        image = ref.astype(np.float64)
        if not np.any(image):
            continue
        if autocenter:
            dx, dy = centre_of_mass_shift(image * mask, pixel, high)
            if np.hypot(dx, dy) <= n / 4:
                image = fourier_shift(image, dx, dy)
        if automask:
            image = image * _automask(image * mask, pixel, high)
        out[k] = (image * mask).astype(np.float32)
    return out


_automask = automask


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
