"""Alignment of a clean reference to a class average, and CTF-corrected class averages.

Both use the in-plane operations of :mod:`live2d_tui.imaging` (rotation about (N//2, N//2));
star values enter only through its :func:`~live2d_tui.imaging.to_class_frame` (cisTEM's
convention). The scorer and the oracle classifications use them.
"""

from __future__ import annotations

import numpy as np

from live2d_tui import imaging
from live2d_tui.ctf import star_ctfs
from live2d_tui.formats.cistem_star import StarRows
from live2d_tui.simulate.metrics import F64

COARSE_STEP = 5.0
"""Degrees between coarse in-plane angles of the reference search (then 1° steps)."""


def _normalised(image: F64, mask: F64) -> F64:
    inside = mask > 0.5
    centred = (image - image[inside].mean()) * mask
    norm = float(np.linalg.norm(centred))
    out: F64 = centred / norm if norm > 0 else centred
    return out


def _peak(cc: F64, max_shift: float) -> tuple[float, float, float]:
    """Highest value of a circular cross-correlation within ``max_shift`` and its sub-pixel
    (dx, dy) position (parabolic fit)."""
    n = cc.shape[0]
    idx = np.fft.fftfreq(n) * n
    allowed = np.hypot(idx[None, :], idx[:, None]) <= max_shift
    masked = np.where(allowed, cc, -np.inf)
    iy, ix = np.unravel_index(int(np.argmax(masked)), cc.shape)

    def refine(minus: float, centre: float, plus: float) -> float:
        denom = minus - 2.0 * centre + plus
        return 0.0 if denom >= 0 else float(np.clip(0.5 * (minus - plus) / denom, -0.5, 0.5))

    dy = idx[iy] + refine(cc[(iy - 1) % n, ix], cc[iy, ix], cc[(iy + 1) % n, ix])
    dx = idx[ix] + refine(cc[iy, (ix - 1) % n], cc[iy, ix], cc[iy, (ix + 1) % n])
    return float(cc[iy, ix]), float(dx), float(dy)


def align_reference(
    image: F64, reference: F64, *, max_shift: float = 6.0
) -> tuple[float, float, float, float]:
    """Best (ncc, angle, dx, dy) such that ``fourier_shift(rotate(reference, angle), dx, dy)``
    matches ``image`` inside a 0.45·N mask (a plain move by (dx, dy) pixels, not star values)."""
    n = image.shape[0]
    mask = imaging.soft_circular_mask(n, 0.45 * n, 0.0)
    f_image = np.fft.rfft2(_normalised(image, mask))

    def score(angle: float) -> tuple[float, float, float, float]:
        turned = _normalised(np.asarray(imaging.rotate(reference, angle), np.float64), mask)
        cc = np.fft.irfft2(f_image * np.conj(np.fft.rfft2(turned)), s=(n, n))
        value, dx, dy = _peak(cc, max_shift)
        return value, angle, dx, dy

    coarse = max((score(a) for a in np.arange(0.0, 360.0, COARSE_STEP)), key=lambda t: t[0])
    fine = max(
        (score(coarse[1] + d) for d in np.arange(-COARSE_STEP + 1, COARSE_STEP)),
        key=lambda t: t[0],
    )
    return fine


def wiener_average(images: F64, rows: StarRows, pixel_size: float, *, constant: float = 1.0) -> F64:
    """CTF-corrected average of particles in their class frame, from the star's psi, shifts
    (Å) and CTF: Σ to_class_frame(CTF·F) / (Σ CTF²_isotropic + constant)."""
    n = images.shape[-1]
    ctf = star_ctfs(rows, n, pixel_size)
    weighted = np.fft.irfft2(np.fft.rfft2(images) * ctf, s=(n, n))
    framed = imaging.to_class_frame(
        weighted, rows["psi"], rows["x_shift"] / pixel_size, rows["y_shift"] / pixel_size
    )
    ctf_iso = star_ctfs(rows, n, pixel_size, isotropic=True)
    denominator = (np.asarray(ctf_iso) ** 2).sum(axis=0) + constant
    out: F64 = np.fft.irfft2(np.fft.rfft2(framed.sum(axis=0)) / denominator, s=(n, n))
    return out
