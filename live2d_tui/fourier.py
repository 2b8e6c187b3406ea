"""Fourier-grid helpers: binning, crops, rings, rotations, phase ramps.

The engine computes with them; the streaming runner compares class averages with them
(:mod:`live2d_tui.similarity`, and the drift of each class between updates), so they sit on the
shared ground below both.

Conventions (shared with :mod:`live2d_tui.imaging`):

- images are [y, x]; the rotation centre is (N//2, N//2), which is also where an object centred
  at the FFT phase origin's opposite lands, so a rotation about it commutes with binning by
  Fourier cropping (pixel N//2 of the full box is pixel n//2 of the binned box, N and n even);
- half-plane spectra are ``numpy.fft.rfft2`` layouts (n, n//2 + 1); ``crop_half``/``pad_half``
  move between box sizes with the same field of view and keep the unnormalised FFT scale, so
  ``irfft2(pad_half(crop_half(rfft2(a), n), N))`` is ``a`` low-passed, at the same scale;
- a rotation by +psi follows ``scipy.ndimage.rotate`` semantics on [y, x] arrays, and the same
  rotation acts on the centred (fftshifted) spectrum; a particle with star values (psi, x, y)
  is ≈ shift(rotate(class, psi), −x, −y) (cisTEM's convention, see :mod:`live2d_tui.imaging`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from live2d_tui.imaging import raised_cosine_edge

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
C64 = npt.NDArray[np.complex64]
AnyArray = npt.NDArray[Any]


def even(value: float) -> int:
    """Nearest even integer ≥ 2."""
    return max(2, 2 * round(value / 2))


def binned_box(box: int, pixel_size: float, high_res: float, *, minimum: int = 8) -> int:
    """Working box for a high-resolution limit: binned pixel = high_res / 2, as cisTEM bins.

    The result is even, at most ``box`` and at least ``min(box, minimum)``.
    """
    high = max(high_res, 2.0 * pixel_size)
    binning = high / pixel_size / 2.0
    nb = even(box / binning)
    return int(min(box, max(nb, min(box, minimum))))


KEEP_RESOLUTION = 7.0
"""cisTEM's refine2d keeps every particle in its class sums at full weight to this resolution
(Å), whatever the search limit: it filters the particle's whitened image with a cosine edge
that ends at max(1/limit, 1/7 Å + 1/falloff). :func:`average_band` follows it."""
KEEP_FALLOFF = 20.0
"""Width (Å, as 1/width in Å⁻¹) of that cosine edge: cisTEM's mask falloff."""
KEEP_EXTEND = 1.5
"""...but the class sums never reach past this multiple of the search limit's frequency: an
alignment at 40 Å carries no signal at 7 Å, and the sums would only cost time."""


@dataclass(frozen=True)
class AverageBand:
    """Where the class sums keep data: full weight to ``full``, a cosine edge to zero at
    ``edge`` (radii in Fourier pixels, i.e. cycles per box), held in an ``box``-pixel grid.

    The search stops at the high-resolution limit; the averages go a little further, so the
    ring at the limit is whole (a class average cut exactly at the limit has only the inner
    half of that ring) and the averages show what the alignment resolves beyond it.
    """

    box: int
    full: float
    edge: float

    def taper(self) -> F64:
        """Weights on the (box, box//2+1) half plane."""
        return raised_cosine_edge(radius_half(self.box), self.full, self.edge - self.full)


def average_band(box: int, pixel_size: float, high_res: float) -> AverageBand:
    """The :class:`AverageBand` of a run (the same in every program run: it depends on the answers
    only).

    The edge lies at 1/7 Å + 1/falloff (cisTEM's), but within [limit + 1 ring, 1.5 × limit]
    and the box's Nyquist; full weight reaches at least half a ring past the limit.
    """
    size = box * pixel_size
    limit = size / max(high_res, 2.0 * pixel_size)
    keep = size * (1.0 / KEEP_RESOLUTION + 1.0 / KEEP_FALLOFF)
    edge = min(max(limit + 1.0, min(keep, KEEP_EXTEND * limit)), box / 2.0)
    full = min(edge, max(limit + 0.5, edge - size / KEEP_FALLOFF))
    grid = min(box, 2 * (int(np.ceil(edge)) + 1))
    return AverageBand(max(grid, binned_box(box, pixel_size, high_res)), full, edge)


def crop_half(spectra: AnyArray, n: int) -> AnyArray:
    """Crop (or keep) half-plane spectra (..., N, N//2+1) to (..., n, n//2+1), n ≤ N, even."""
    big = spectra.shape[-2]
    if n == big:
        return spectra
    half = n // 2
    rows = np.r_[0:half, big - half : big]
    return spectra[..., rows, : half + 1]


def pad_half(spectra: AnyArray, n: int) -> AnyArray:
    """Zero-pad half-plane spectra (..., m, m//2+1) to (..., n, n//2+1), n ≥ m, even."""
    small = spectra.shape[-2]
    if n == small:
        return spectra
    half = small // 2
    out = np.zeros((*spectra.shape[:-2], n, n // 2 + 1), dtype=spectra.dtype)
    out[..., :half, : half + 1] = spectra[..., :half, :]
    out[..., n - half :, : half + 1] = spectra[..., half:, :]
    return out


def radius_half(n: int) -> F64:
    """|k| in Fourier pixels (cycles per box) on the (n, n//2+1) half-plane grid."""
    ky = np.fft.fftfreq(n) * n
    kx = np.fft.rfftfreq(n) * n
    return np.hypot(kx[None, :], ky[:, None])


def band_mask(
    n: int, box_angstrom: float, low_res: float, high_res: float
) -> npt.NDArray[np.bool_]:
    """Half-plane coefficients of an n-pixel box (``box_angstrom`` wide) from ``low_res`` to
    ``high_res`` Å (no low cut when ``low_res`` ≤ 0; never past n/2; never the mean)."""
    r = radius_half(n)
    band = r <= min(n / 2.0, box_angstrom / high_res)
    if low_res > 0:
        band &= r >= box_angstrom / low_res
    band[0, 0] = False
    return band


def shift_window(n: int, radius: float) -> npt.NDArray[np.int64]:
    """Flat indices, in an (n, n) correlation map, of the translations (wrapped) within
    ``radius`` pixels."""
    t = np.fft.fftfreq(n) * n
    inside = np.hypot(t[None, :], t[:, None]) <= radius + 1e-6
    return np.flatnonzero(inside.ravel())


def half_weights(n: int) -> F64:
    """Weight of each half-plane coefficient in a full-plane sum (1 on the self-conjugate
    columns 0 and n/2, 2 elsewhere)."""
    w = np.full((n, n // 2 + 1), 2.0)
    w[:, 0] = 1.0
    w[:, -1] = 1.0
    return w


def ring_index(n: int) -> npt.NDArray[np.int64]:
    """Integer ring (rounded |k|) of every half-plane coefficient."""
    return np.rint(radius_half(n)).astype(np.int64)


def ring_average(values: AnyArray, n: int) -> F64:
    """Average of half-plane values (..., n, n//2+1) over each ring → (..., n//2 + 1 + 1)."""
    rings = ring_index(n).ravel()
    count = np.bincount(rings, weights=half_weights(n).ravel())
    flat = values.reshape(-1, rings.size)
    sums = np.stack([np.bincount(rings, weights=row * half_weights(n).ravel()) for row in flat])
    out = sums / np.maximum(count, 1e-12)
    return out.reshape((*values.shape[:-2], count.size))


def phase_ramp(n: int, dx: AnyArray, dy: AnyArray) -> C64:
    """Half-plane ramps that move content by (+dx, +dy) pixels: shape (*dx.shape, n, n//2+1)."""
    ky = (np.fft.fftfreq(n)).astype(np.float32)
    kx = (np.fft.rfftfreq(n)).astype(np.float32)
    dxa = np.asarray(dx, dtype=np.float32)[..., None, None]
    dya = np.asarray(dy, dtype=np.float32)[..., None, None]
    phase = -2.0 * np.pi * (kx[None, :] * dxa + ky[:, None] * dya)
    return np.exp(1j * phase).astype(np.complex64)


def _rotation_sources(shape: tuple[int, ...], angle_deg: float) -> tuple[F64, F64]:
    """(y, x) input coordinates of every output pixel of a rotation by ``angle_deg`` about
    (N//2, N//2): the inverse map of ``ndimage.rotate``, input = R(−a) · output, in (x, y) with
    y pointing down the rows."""
    ny, nx = shape
    cy, cx = ny // 2, nx // 2
    a = np.deg2rad(angle_deg)
    c, s = np.cos(a), np.sin(a)
    y, x = np.indices((ny, nx), dtype=np.float64)
    y -= cy
    x -= cx
    return s * x + c * y + cy, c * x - s * y + cx


def rotate_image(image: AnyArray, angle_deg: float, *, order: int = 3) -> F64:
    """Rotate one [y, x] image by ``angle_deg`` (``ndimage.rotate`` sense) about (N//2, N//2).

    Zero fill outside; ``order`` is the spline order (1 for spectra, 3 for images).
    """
    from scipy import ndimage  # imported here: 0.2 s that merge2d and most calls never need

    yin, xin = _rotation_sources(image.shape, angle_deg)
    out: F64 = ndimage.map_coordinates(
        np.asarray(image, dtype=np.float64), [yin, xin], order=order, mode="constant", cval=0.0
    )
    return out


def half_to_centered(values: AnyArray, n: int) -> F64:
    """Full-plane, fftshifted array (centre n//2) of a real, Hermitian-even half-plane function."""
    full = np.zeros((n, n))
    ky = np.fft.fftfreq(n) * n
    rows = (ky.astype(np.int64) + n // 2) % n
    half = n // 2
    full[rows[:, None], (np.arange(half + 1) + half)[None, :] % n] = values
    neg_rows = (-ky.astype(np.int64) + n // 2) % n
    cols = (half - np.arange(half + 1)) % n
    full[neg_rows[:, None], cols[None, :]] = values
    return full


def centered_to_half(full: AnyArray, n: int) -> F64:
    """Inverse of :func:`half_to_centered`."""
    ky = np.fft.fftfreq(n) * n
    rows = (ky.astype(np.int64) + n // 2) % n
    half = n // 2
    out: F64 = full[rows[:, None], (np.arange(half + 1) + half)[None, :] % n]
    return out


def rotate_bilinear(image: AnyArray, angle_deg: float) -> F64:
    """:func:`rotate_image` with ``order=1`` in plain numpy (no scipy import in the hot path of a
    short-lived process); zero where the source point lies outside the input grid, as
    ``map_coordinates(mode="constant")``."""
    ny, nx = image.shape
    yin, xin = _rotation_sources(image.shape, angle_deg)
    x0 = np.floor(xin).astype(np.int64)
    y0 = np.floor(yin).astype(np.int64)
    fx = xin - x0
    fy = yin - y0
    src = np.asarray(image, dtype=np.float64)
    out: F64 = np.zeros((ny, nx))
    valid = (xin >= 0) & (xin <= nx - 1) & (yin >= 0) & (yin <= ny - 1)
    for dy, dx, w in ((0, 0, (1 - fy) * (1 - fx)), (0, 1, (1 - fy) * fx),
                      (1, 0, fy * (1 - fx)), (1, 1, fy * fx)):  # fmt: skip
        yy, xx = y0 + dy, x0 + dx
        inside = valid & (yy < ny) & (xx < nx)
        out[inside] += w[inside] * src[yy[inside], xx[inside]]
    return out


def rotate_half_real(values: AnyArray, n: int, angle_deg: float) -> F64:
    """Rotate a real, even spectrum function (e.g. a CTF² sum) held on the half plane."""
    full = half_to_centered(values, n)
    return centered_to_half(rotate_bilinear(full, angle_deg), n)


def _shear(images: AnyArray, factor: AnyArray, axis: int) -> AnyArray:
    """Shear a (..., R, P, P) stack, one factor per R: along x (``axis`` −1)
    f_new(x, y) = f(x + a·(y − c), y), or along y (``axis`` −2) f_new(x, y) = f(x, y + a·(x − c)),
    by exact Fourier phase shifts of each row/column (real FFTs, single precision)."""
    n = images.shape[-1]
    k = np.fft.rfftfreq(n).astype(np.float32)
    pos = (np.arange(n) - n // 2).astype(np.float32)
    a = np.asarray(factor, dtype=np.float32)[:, None, None]
    if axis == -1:
        phase = np.exp((2j * np.pi) * (a * pos[None, :, None]) * k[None, None, :])
    else:
        phase = np.exp((2j * np.pi) * (a * k[None, :, None]) * pos[None, None, :])
    spectra = np.fft.rfft(images, axis=axis)
    return np.fft.irfft(spectra * phase.astype(np.complex64), n=n, axis=axis)


_ROT90_ROLL = {1: (1, 0), 2: (1, 1), 3: (0, 1)}
"""``np.rot90`` turns about (N-1)/2; this roll makes it turn about N//2 (ndimage sense)."""


def rotate_images_fft(images: AnyArray, angles_deg: AnyArray) -> F32:
    """Rotate images by angles about (P//2, P//2), ``ndimage.rotate`` sense.

    ``images`` is (..., R, P, P) or (..., 1, P, P) (one image per leading index, rotated by all
    R angles); the result is (..., R, P, P) float32. Exact quarter turns, then three Fourier
    shears (x, y, x: α = −tan(θ/2), β = sin θ) for the remaining |θ| ≤ 45°, each shear's phase
    computed once per angle. Exact for band-limited content that stays inside the box during
    the shears: give images whose content lies within the central half (pad 2×).
    """
    images = np.asarray(images, dtype=np.float32)
    angles = np.asarray(angles_deg, dtype=np.float64).reshape(-1)
    quarter = np.rint(angles / 90.0).astype(np.int64)
    rest = np.deg2rad(angles - 90.0 * quarter)
    shape = (*images.shape[:-3], len(angles), *images.shape[-2:])
    out = np.empty(shape, dtype=np.float32)
    for k in range(4):
        sel = np.flatnonzero(np.mod(quarter, 4) == k)
        if len(sel) == 0:
            continue
        block = images if images.shape[-3] == 1 else images[..., sel, :, :]
        if k:
            block = np.rot90(block, k, axes=(-2, -1))
            block = np.roll(block, _ROT90_ROLL[k], axis=(-2, -1))
        alpha = -np.tan(rest[sel] / 2.0)
        beta = np.sin(rest[sel])
        block = _shear(_shear(_shear(block, alpha, -1), beta, -2), alpha, -1)
        out[..., sel, :, :] = block
    return out


SHEAR_GROWTH = 1.0824
"""√(1 + tan²22.5°): no step of a three-shear rotation (|θ| ≤ 45° after quarter turns) takes a
disc of spectrum of radius R past R·SHEAR_GROWTH on either axis."""


def fast_even(n: int) -> int:
    """Smallest even integer ≥ ``n`` without prime factors above 7 (a quick FFT length).

    Not ``scipy.fft.next_fast_len``: importing it costs every program run about 0.2 s, and it may
    return an odd length."""
    m = max(2, n + n % 2)
    while True:
        rest = m
        for prime in (2, 3, 5, 7):
            while rest % prime == 0:
                rest //= prime
        if rest == 1:
            return m
        m += 2


def rotate_half_spectra(
    spectra: AnyArray, angles_deg: AnyArray, radius: float | None = None
) -> C64:
    """Rotate the images behind half-plane spectra by angles (see :func:`rotate_images_fft`).

    ``spectra`` is (..., R or 1, n, n//2+1); each image is formed 2× oversampled (Fourier zero
    padding), rotated and cropped back. Returns (..., R, n, n//2+1) complex64.

    With ``radius`` (Fourier pixels), only the disc |k| ≤ radius is rotated and returned (zero
    elsewhere), and the images are oversampled just enough for that disc (see
    :data:`SHEAR_GROWTH`): about 1.1·radius instead of 2·n, a third of the work when the disc
    fills the box.
    """
    spectra = np.asarray(spectra)
    n = spectra.shape[-2]
    if radius is None:
        big = 2 * n
        disc = None
    else:
        disc = radius_half(n) <= radius
        spectra = spectra * disc
        big = max(n, fast_even(2 * int(np.ceil(SHEAR_GROWTH * radius)) + 4))
    images = np.fft.irfft2(pad_half(spectra.astype(np.complex64), big), s=(big, big))
    rotated = rotate_images_fft(images, angles_deg)
    out: C64 = crop_half(np.fft.rfft2(rotated), n).astype(np.complex64)
    if disc is not None:
        out *= disc
    return out
