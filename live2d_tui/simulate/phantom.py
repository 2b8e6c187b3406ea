"""The 3D phantom (a sum of Gaussian blobs) and its exact analytic projections.

Conventions (docs/simulation-and-scoring.md#conventions, RELION's; the phantom:
#the-phantom):
- ZYZ Euler angles (rot, tilt, psi) in degrees rotate the reference into the observation; a
  point r of the phantom lands at ((A·r)ₓ, (A·r)ᵧ) in the image, A = :func:`euler_matrix`.
- Images are arrays [y, x]; the phantom's origin projects to pixel (N//2, N//2).
- A particle with RELION origin (ox, oy) (Å) is the projection shifted by −origin.
- Consequence checked by the tests: ``project(rot, tilt, psi) ≈
  imaging.rotate(project(rot, tilt, 0), psi)`` (the in-plane convention of
  :mod:`live2d_tui.imaging`).

Projection is analytic: a blob of amplitude a and width σ projects to a 2D Gaussian
a·√(2π)σ·g(x)·g(y) centred at c′, which is separable. Each 1D factor is sampled band-limited
(its closed-form transform √(2π)σ·exp(−2π²σ²k²)·exp(−2πikc′) inverted on the pixel grid), so
sub-pixel shifts are exact and nothing aliases or is interpolated; an image is then one real
(N × J)·(J × N) matrix product.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Phantom:
    """A sum of isotropic 3D Gaussians f(r) = Σ aⱼ·exp(−|r − cⱼ|²/2σⱼ²), lengths in Å."""

    centres: FloatArray
    """(J, 3) blob centres (x, y, z), Å, centre of mass at the origin."""
    sigmas: FloatArray
    """(J,) blob widths, Å."""
    amplitudes: FloatArray
    """(J,) blob amplitudes."""

    def to_json(self) -> dict[str, Any]:
        """A JSON-able description (what ``truth/phantom.json`` holds)."""
        return {
            "model": "sum of isotropic 3D Gaussians, f(r) = sum a_j exp(-|r-c_j|^2 / 2 s_j^2)",
            "units": "Angstrom",
            "centres": self.centres.tolist(),
            "sigmas": self.sigmas.tolist(),
            "amplitudes": self.amplitudes.tolist(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Phantom:
        """Inverse of :meth:`to_json`."""
        return cls(
            centres=np.asarray(data["centres"], dtype=np.float64).reshape(-1, 3),
            sigmas=np.asarray(data["sigmas"], dtype=np.float64),
            amplitudes=np.asarray(data["amplitudes"], dtype=np.float64),
        )

    @classmethod
    def load(cls, path: Path) -> Phantom:
        """Read a phantom from a ``phantom.json`` file."""
        return cls.from_json(json.loads(Path(path).read_text(encoding="utf-8")))


def make_phantom(
    diameter: float, seed: int = 0, *, min_sigma: float = 4.0, fine_sigma: float = 2.0
) -> Phantom:
    """An asymmetric, chiral, protein-like blob model about ``diameter`` Å across.

    Four domains of unequal size at unequal, non-coplanar positions, a long arm that winds as a
    right-handed helix (which makes the model chiral), a short straight arm and a few small
    satellites, plus 32 small blobs of ``fine_sigma`` Å inside the domains (high-resolution
    detail). All other blob widths are at least ``min_sigma`` Å.
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5EED]))
    radius = diameter / 2.0
    centres: list[FloatArray] = []
    sigmas: list[float] = []
    amps: list[float] = []
    fine_flags: list[bool] = []

    def add(c: npt.ArrayLike, s: float, a: float, fine: bool = False) -> None:
        centres.append(np.asarray(c, dtype=np.float64))
        sigmas.append(s)
        amps.append(a)
        fine_flags.append(fine)

    # four domains of unequal size at non-coplanar, unequal distances (no symmetry axis)
    domains = (
        ((0.36, 0.12, 0.05), 0.19, 1.0),
        ((-0.30, 0.28, -0.12), 0.15, 1.0),
        ((0.02, -0.42, 0.22), 0.13, 1.1),
        ((-0.12, -0.02, 0.48), 0.10, 1.2),
    )
    for (x, y, z), s_rel, amp in domains:
        add([x * radius, y * radius, z * radius], s_rel * radius, amp)
    # two arms: a long right-handed helix (makes the model chiral) and a short straight one
    arms = (
        ((0.36, 0.12, 0.05), (-0.45, -0.75, -0.48), 0.62, 7, 2.4 * np.pi),
        ((-0.30, 0.28, -0.12), (-0.2, 0.75, -0.62), 0.42, 4, 0.0),
    )
    for start, direction, length, steps, turns in arms:
        d = np.asarray(direction) / np.linalg.norm(direction)
        perp1 = np.cross(d, [0.0, 0.0, 1.0])
        perp1 /= np.linalg.norm(perp1)
        perp2 = np.cross(d, perp1)
        origin = np.asarray(start) * radius
        for step in range(1, steps + 1):
            t = step / steps
            twist = turns * t
            wobble = 0.08 * radius * (np.cos(twist) * perp1 + np.sin(twist) * perp2)
            add(origin + d * length * radius * t + wobble, 0.065 * radius, 1.6)
    # small satellites at random places inside 0.55 R
    for _ in range(4):
        v = rng.normal(size=3)
        v *= 0.55 * radius * rng.uniform(0.6, 1.0) / np.linalg.norm(v)
        add(v, 0.05 * radius, rng.uniform(1.0, 1.5))
    # fine detail (secondary-structure-sized, σ = ``fine_sigma`` Å) inside the domains, so the
    # projections carry signal up to high resolution; the analytic Fourier projection evaluates
    # them band-limited, so they do not alias even below 1 px
    for (x, y, z), s_rel, _ in domains:
        centre = np.array([x, y, z]) * radius
        for _ in range(8):
            add(centre + rng.normal(size=3) * 0.8 * s_rel * radius, fine_sigma, 6.0, fine=True)
    c = np.array(centres)
    s = np.array(sigmas)
    a = np.array(amps)
    mass = a * s**3
    c -= (mass[:, None] * c).sum(axis=0) / mass.sum()
    # fit the outer envelope (centre distance + 1.5 σ) to the requested radius
    extent = float(np.max(np.linalg.norm(c, axis=1) + 1.5 * s))
    scale = 0.95 * radius / extent
    c *= scale
    s = np.where(fine_flags, fine_sigma, np.maximum(min_sigma, s * scale))
    return Phantom(centres=c, sigmas=s, amplitudes=a)


def euler_matrix(rot: npt.ArrayLike, tilt: npt.ArrayLike, psi: npt.ArrayLike) -> FloatArray:
    """RELION's ZYZ rotation matrix A (…, 3, 3) for angles in degrees (broadcast)."""
    a, b, g = (np.deg2rad(np.asarray(v, dtype=np.float64)) for v in (rot, tilt, psi))
    a, b, g = np.broadcast_arrays(a, b, g)
    ca, sa, cb, sb, cg, sg = np.cos(a), np.sin(a), np.cos(b), np.sin(b), np.cos(g), np.sin(g)
    m = np.empty((*a.shape, 3, 3))
    m[..., 0, 0] = cg * cb * ca - sg * sa
    m[..., 0, 1] = cg * cb * sa + sg * ca
    m[..., 0, 2] = -cg * sb
    m[..., 1, 0] = -sg * cb * ca - cg * sa
    m[..., 1, 1] = -sg * cb * sa + cg * ca
    m[..., 1, 2] = sg * sb
    m[..., 2, 0] = sb * ca
    m[..., 2, 1] = sb * sa
    m[..., 2, 2] = cb
    return m


def viewing_direction(rot: npt.ArrayLike, tilt: npt.ArrayLike) -> FloatArray:
    """Unit viewing directions (…, 3): the third row of A, (sin b cos a, sin b sin a, cos b)."""
    a = np.deg2rad(np.asarray(rot, dtype=np.float64))
    b = np.deg2rad(np.asarray(tilt, dtype=np.float64))
    a, b = np.broadcast_arrays(a, b)
    return np.stack([np.sin(b) * np.cos(a), np.sin(b) * np.sin(a), np.cos(b)], axis=-1)


def fibonacci_views(count: int) -> FloatArray:
    """``count`` well-spread (rot, tilt) pairs in degrees (Fibonacci sphere), shape (count, 2)."""
    if count <= 0:
        return np.zeros((0, 2))
    i = np.arange(count, dtype=np.float64) + 0.5
    z = 1.0 - 2.0 * i / count
    golden = np.pi * (3.0 - np.sqrt(5.0))
    rot = np.rad2deg(np.angle(np.exp(1j * golden * i)))
    tilt = np.rad2deg(np.arccos(np.clip(z, -1.0, 1.0)))
    return np.stack([rot, tilt], axis=1)


def _band_limited_gaussians(
    centres: FloatArray, sigmas: FloatArray, box: int, pixel_size: float
) -> FloatArray:
    """Samples (B, J, box) of the band-limited 1D Gaussians exp(−(x − c)²/2σ²), x = n·pixel.

    The transform √(2π)σ·exp(−2π²σ²k²)·exp(−2πikc) is evaluated on the rfft grid and inverted,
    so the samples are exact up to the Nyquist term and nothing aliases, even for σ < 1 px.
    """
    k = np.fft.rfftfreq(box, d=pixel_size)
    envelope = (
        np.sqrt(2.0 * np.pi)
        * sigmas[:, None]
        * np.exp(-2.0 * np.pi**2 * sigmas[:, None] ** 2 * k[None, :] ** 2)
    )
    # exp(−2πi·k_m·c) with k_m = m/(N·pixel) is a geometric sequence in m: one complex
    # exponential per blob and a running product, instead of one per frequency
    step = -2.0 * np.pi * centres / (box * pixel_size)
    phase = np.empty((*centres.shape, len(k)), dtype=np.complex128)
    phase[..., 0] = 1.0
    phase[..., 1:] = (np.cos(step) + 1j * np.sin(step))[..., None]
    np.cumprod(phase, axis=-1, out=phase)
    out: FloatArray = np.fft.irfft(envelope[None] * phase / pixel_size, n=box, axis=-1)
    return out


def project(
    phantom: Phantom,
    rot: npt.ArrayLike,
    tilt: npt.ArrayLike,
    psi: npt.ArrayLike,
    *,
    box: int,
    pixel_size: float,
    shift_x: npt.ArrayLike = 0.0,
    shift_y: npt.ArrayLike = 0.0,
    bfactor: float = 0.0,
) -> FloatArray:
    """Clean projections (B, box, box): pixel values of the band-limited line integrals.

    ``shift_x``/``shift_y`` (Å) move the content towards +x/+y (a RELION origin o is a shift
    of −o). A projected blob is a·√(2π)σ·g(x)·g(y) with g a 1D Gaussian, so each image is one
    real (box × J)·(J × box) product of band-limited 1D kernels.
    """
    rot_a = np.atleast_1d(np.asarray(rot, dtype=np.float64))
    count = np.broadcast_shapes(rot_a.shape, np.shape(tilt), np.shape(psi))[0]
    mats = np.broadcast_to(euler_matrix(rot_a, tilt, psi), (count, 3, 3))
    moved = np.einsum("bij,nj->bni", mats[:, :2, :], phantom.centres)  # (B, J, 2) Å
    centre = (box // 2) * pixel_size
    sx = np.broadcast_to(np.asarray(shift_x, dtype=np.float64), (count,))
    sy = np.broadcast_to(np.asarray(shift_y, dtype=np.float64), (count,))
    gx = _band_limited_gaussians(moved[..., 0] + centre + sx[:, None], phantom.sigmas, box,
                                 pixel_size)  # fmt: skip
    gy = _band_limited_gaussians(moved[..., 1] + centre + sy[:, None], phantom.sigmas, box,
                                 pixel_size)  # fmt: skip
    weight = phantom.amplitudes * np.sqrt(2.0 * np.pi) * phantom.sigmas
    # einsum's optimised path is ~10x faster here than numpy's stacked matmul
    images: FloatArray = np.einsum("bjy,bjx->byx", gy * weight[None, :, None], gx, optimize=True)
    if bfactor:
        kx = np.fft.rfftfreq(box, d=pixel_size)
        ky = np.fft.fftfreq(box, d=pixel_size)
        envelope = np.exp(-bfactor * (kx[None, :] ** 2 + ky[:, None] ** 2) / 4.0)
        images = np.fft.irfft2(np.fft.rfft2(images) * envelope, s=(box, box))
    return images
