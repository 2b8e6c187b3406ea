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

from live2d_tui import fourier as nm
from live2d_tui.engine.averages import MASK_FALLOFF
from live2d_tui.imaging import fourier_shift, soft_circular_mask


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
