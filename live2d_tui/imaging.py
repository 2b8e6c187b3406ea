"""Small image operations shared by the simulator, the engine and the scorer.

**In-plane convention** (one place, used everywhere; it is cisTEM refine2d's, derived from its
source in docs/conventions.md): arrays are indexed [y, x] (x the fast axis, y the slow one, as
MRC stores them); the rotation centre is (N//2, N//2). ``rotate(image, a)`` has
``scipy.ndimage.rotate`` semantics on a [y, x] array: rotated(p) = image(R(a)·p) about the
centre, with R(a) = [[cos a, −sin a], [sin a, cos a]] acting on (x, y), which is what cisTEM's
``Image::Rotate2DSample`` does with ``AnglesAndShifts::GenerateRotationMatrix2D(a)``. A particle
with star values (psi, x_shift, y_shift), shifts s = (x_shift, y_shift) / pixel size, relates to
its class average by

    class(r) = particle(R(−psi)·r − s)        particle(q) = class(R(psi)·(q + s))

that is, in the operations below (shifts in pixels here; stars hold Å):

    class ≈ rotate(shift(particle, +x, +y), −psi)      particle ≈ shift(rotate(class, psi), −x, −y)

The particle's centre sits at −s in its box (cisTEM re-centres picks from 2D classes by
subtracting the shifts), and psi turns the class into the particle. :func:`to_class_frame` and
:func:`from_class_frame` are the only places that apply star values to images.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.floating[Any]]


def fourier_shift(images: Array, dx: npt.ArrayLike, dy: npt.ArrayLike) -> Array:
    """Shift images by (dx, dy) pixels (content moves towards +x/+y), exactly, by phase ramps.

    ``images`` is (N, N) or (B, N, N); dx/dy are scalars or length-B arrays.
    """
    arr = np.asarray(images)
    batched = arr.ndim == 3
    stack = arr if batched else arr[None]
    n = stack.shape[-1]
    ky = np.fft.fftfreq(stack.shape[-2])[:, None]
    kx = np.fft.rfftfreq(n)[None, :]
    dxa = np.broadcast_to(np.asarray(dx, dtype=np.float64), (stack.shape[0],))[:, None, None]
    dya = np.broadcast_to(np.asarray(dy, dtype=np.float64), (stack.shape[0],))[:, None, None]
    ramp = np.exp(-2j * np.pi * (kx[None] * dxa + ky[None] * dya))
    out = np.fft.irfft2(np.fft.rfft2(stack) * ramp, s=stack.shape[-2:])
    out = out.astype(arr.dtype if np.issubdtype(arr.dtype, np.floating) else np.float64)
    return out if batched else out[0]


def _rotate_one(image: Array, angle_deg: float, order: int) -> Array:
    # scipy.ndimage.rotate's matrix, but about (N//2, N//2) (RELION's and cisTEM's centre)
    # instead of ndimage.rotate's ((N-1)/2, (N-1)/2): for even N those differ by half a pixel,
    # which would shift every rotated image by a psi-dependent sub-pixel amount
    from scipy import ndimage  # imported here: 0.2 s that the engine's processes never need

    a = np.deg2rad(angle_deg)
    c, s = np.cos(a), np.sin(a)
    matrix = np.array([[c, s], [-s, c]])
    centre = np.array([image.shape[0] // 2, image.shape[1] // 2], dtype=np.float64)
    return ndimage.affine_transform(  # type: ignore[no-any-return]
        image, matrix, offset=centre - matrix @ centre, order=order, mode="constant", cval=0.0
    )


def rotate(images: Array, angle_deg: npt.ArrayLike, order: int = 3) -> Array:
    """Rotate images by ``angle_deg`` (``scipy.ndimage.rotate`` sense, no reshape, zero fill)
    about the centre (N//2, N//2)."""
    arr = np.asarray(images)
    if arr.ndim == 2:
        return _rotate_one(arr, float(np.asarray(angle_deg)), order)
    angles = np.broadcast_to(np.asarray(angle_deg, dtype=np.float64), (arr.shape[0],))
    return np.stack([_rotate_one(img, float(a), order) for img, a in zip(arr, angles, strict=True)])


def to_class_frame(
    images: Array, psi_deg: npt.ArrayLike, x_px: npt.ArrayLike, y_px: npt.ArrayLike
) -> Array:
    """Bring particles into their class average's frame from their star values (psi in degrees,
    shifts in pixels): shift by (+x, +y), then rotate by −psi (the module's convention)."""
    shifted = fourier_shift(images, x_px, y_px)
    return rotate(shifted, -np.asarray(psi_deg, dtype=np.float64))


def from_class_frame(
    images: Array, psi_deg: npt.ArrayLike, x_px: npt.ArrayLike, y_px: npt.ArrayLike
) -> Array:
    """Inverse of :func:`to_class_frame`: a class average as a particle with these star values
    sees it: rotate by +psi, then shift by (−x, −y)."""
    rotated = rotate(images, np.asarray(psi_deg, dtype=np.float64))
    return fourier_shift(
        rotated, -np.asarray(x_px, dtype=np.float64), -np.asarray(y_px, dtype=np.float64)
    )


def radius_grid(box: int) -> npt.NDArray[np.float64]:
    """Distance of each pixel from the centre (N//2, N//2)."""
    y, x = np.indices((box, box), dtype=np.float64)
    c = box // 2
    return np.hypot(x - c, y - c)


def raised_cosine_edge(
    r: npt.NDArray[np.float64], inner: float, width: float
) -> npt.NDArray[np.float64]:
    """Weights of radii ``r``: 1 up to ``inner``, a raised-cosine fall to 0 over ``width``
    beyond it, 0 from ``inner + width`` on (``width`` 0: a step, 1 up to ``inner``)."""
    if width <= 0:
        return (r <= inner).astype(np.float64)
    t = np.clip((r - inner) / width, 0.0, 1.0)
    out: npt.NDArray[np.float64] = 0.5 * (1.0 + np.cos(np.pi * t))
    return out


def soft_circular_mask(box: int, radius_px: float, edge_px: float = 3.0) -> npt.NDArray[np.float64]:
    """1 inside ``radius_px``, a raised-cosine fall to 0 over ``edge_px`` pixels outside."""
    return raised_cosine_edge(radius_grid(box), radius_px, edge_px)


def fourier_crop(images: Array, new_box: int) -> Array:
    """Resample images to ``new_box`` pixels (same field of view) by cropping or zero-padding
    their Fourier transform; intensities keep their real-space scale."""
    arr = np.asarray(images)
    batched = arr.ndim == 3
    stack = arr if batched else arr[None]
    n = stack.shape[-1]
    if new_box == n:
        return arr
    f = np.fft.fftshift(np.fft.fft2(stack), axes=(-2, -1))
    out = np.zeros((stack.shape[0], new_box, new_box), dtype=np.complex128)
    c_old, c_new = n // 2, new_box // 2
    half = min(n, new_box) // 2
    lo = -half
    hi = min(n, new_box) - half
    out[:, c_new + lo : c_new + hi, c_new + lo : c_new + hi] = f[
        :, c_old + lo : c_old + hi, c_old + lo : c_old + hi
    ]
    res: Array = np.fft.ifft2(np.fft.ifftshift(out, axes=(-2, -1))).real * (new_box / n) ** 2
    res = res.astype(arr.dtype if np.issubdtype(arr.dtype, np.floating) else np.float64)
    return res if batched else res[0]
