"""The engine's star follows cisTEM refine2d's in-plane convention, pinned from first principles.

cisTEM's refine2d (``Refine2DApp::DoCalculation`` and ``Particle::MLBlur``; docs/conventions.md)
turns each particle P with ``Image::Rotate2DSample`` by the matrix
``AnglesAndShifts::GenerateRotationMatrix2D(−psi)`` (out(p) = P(R(−psi)·p), R(a) the
counter-clockwise matrix on (x, y)), moves it by the correlation peak d and adds it to its class;
it writes psi and the shift s = R(−psi)·d (Å). So, with x the fast axis, y the slow one, both
about the box centre N//2, and s in pixels:

    class(r) = P(R(−psi)·r − s)        P(q) = class(R(psi)·(q + s))

The particles here are made from an analytic, chiral image by the right-hand equation, with
known psi and shifts at 1.7 Å/px, without any of the project's image code; ``live2d-refine2d``
(a real subprocess, 25 answers) then refines them against that image as its only reference.
Its star must give back the known values, and re-averaging the particles with the left-hand
equation (scipy's spline sampling, again none of the project's image code) must reproduce the
engine's class average.
"""

from __future__ import annotations

from dataclasses import dataclass

import mrcfile
import numpy as np
import numpy.typing as npt
import pytest

from live2d_tui.ctf import ctf_2d
from live2d_tui.formats.cistem_star import empty_rows, read_star, write_star

from .helpers import refine_ok

F64 = npt.NDArray[np.float64]

BOX = 64
PIXEL = 1.7  # Å; ≠ 1, so Å and pixels cannot be confused
CENTRE = BOX // 2
# (x, y) centre in Å from the box centre, σ in Å, amplitude: no mirror or rotation symmetry
BLOBS = np.array(
    [
        (0.0, 0.0, 9.0, 1.0),
        (16.0, 3.0, 5.0, 0.9),
        (-6.0, 15.0, 6.0, 0.7),
        (-13.0, -9.0, 4.5, 0.8),
        (5.0, -17.0, 5.5, 0.5),
    ]
)


def rotation(angle_deg: F64) -> F64:
    """R(a) = [[cos a, −sin a], [sin a, cos a]] acting on (x, y), one per angle: (n, 2, 2)."""
    a = np.deg2rad(np.atleast_1d(angle_deg))
    c, s = np.cos(a), np.sin(a)
    return np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)


def grid() -> F64:
    """(N, N, 2) pixel coordinates (x, y) relative to the centre, indexed [y, x]."""
    y, x = np.indices((BOX, BOX), dtype=np.float64) - CENTRE
    return np.stack([x, y], axis=-1)


def reference_at(points_px: F64) -> F64:
    """The analytic image at (x, y) pixel positions (..., 2)."""
    points = points_px * PIXEL
    out = np.zeros(points.shape[:-1])
    for cx, cy, sigma, amplitude in BLOBS:
        d2 = (points[..., 0] - cx) ** 2 + (points[..., 1] - cy) ** 2
        out += amplitude * np.exp(-d2 / (2.0 * sigma**2))
    return out


def cistem_particles(psi: F64, shifts_px: F64) -> F64:
    """P_i(q) = class(R(psi_i)·(q + s_i)), evaluated exactly: (n, N, N)."""
    q = grid()
    moved = q[None] + shifts_px[:, None, None, :]
    turned = np.einsum("nij,nyxj->nyxi", rotation(psi), moved)
    return reference_at(turned)


def cistem_class_frame(image: F64, psi: float, shift_px: F64) -> F64:
    """class(r) = P(R(−psi)·r − s), sampling P with cubic splines (zero outside)."""
    from scipy import ndimage

    r = grid()
    source = np.einsum("ij,yxj->yxi", rotation(np.array([-psi]))[0], r) - shift_px
    coords = np.stack([source[..., 1] + CENTRE, source[..., 0] + CENTRE])  # (row, col)
    return ndimage.map_coordinates(image, coords, order=3, mode="constant")  # type: ignore[no-any-return]


def band_correlation(a: F64, b: F64, low: float, high: float, radius: float) -> float:
    """Correlation of ``a`` and ``b`` band-passed to ``low``-``high`` Å, inside ``radius`` Å."""
    kx, ky = np.fft.rfftfreq(BOX, PIXEL), np.fft.fftfreq(BOX, PIXEL)
    k = np.hypot(kx[None, :], ky[:, None])
    band = (k >= 1.0 / low) & (k <= 1.0 / high)
    inside = np.hypot(*grid().transpose(2, 0, 1)) * PIXEL <= radius
    u, v = (np.fft.irfft2(np.fft.rfft2(x) * band, s=(BOX, BOX))[inside] for x in (a, b))
    return float(u @ v / np.sqrt((u @ u) * (v @ v)))


@dataclass(frozen=True)
class Refined:
    psi: F64
    shifts: F64
    """Å, (n, 2)."""
    ctf: F64
    images: F64
    star: npt.NDArray[np.void]
    average: F64
    """The engine's class average."""


@pytest.fixture(scope="module")
def refined(tmp_path_factory: pytest.TempPathFactory) -> Refined:
    """Known particles, the reference, and what ``live2d-refine2d`` made of them."""
    folder = tmp_path_factory.mktemp("convention")
    rng = np.random.default_rng(2024)
    n = 48
    psi = rng.uniform(0.0, 360.0, n)
    radius = rng.uniform(2.0, 6.0, n)  # Å: well clear of zero, so a sign error shows
    direction = rng.uniform(0.0, 2.0 * np.pi, n)
    shifts_a = np.stack([radius * np.cos(direction), radius * np.sin(direction)], axis=1)
    defocus = rng.uniform(8000.0, 20000.0, n)
    clean = cistem_particles(psi, shifts_a / PIXEL)
    ctf = ctf_2d(BOX, PIXEL, defocus, defocus, 0.0)
    weighted = np.fft.irfft2(np.fft.rfft2(clean) * ctf, s=(BOX, BOX))
    noisy = weighted + rng.normal(0.0, 0.02 * weighted.std(), weighted.shape)
    stack = folder / "particles.mrcs"
    with mrcfile.new(stack) as handle:
        handle.set_data(noisy.astype(np.float32))
        handle.voxel_size = PIXEL
    rows = empty_rows(n)
    rows["position"] = np.arange(1, n + 1)
    rows["defocus_1"] = rows["defocus_2"] = defocus
    rows["pixel_size"] = PIXEL
    rows["voltage"] = 300.0
    rows["sigma"] = 10.0
    star = folder / "input.star"
    write_star(star, rows)
    reference = folder / "reference.mrc"
    with mrcfile.new(reference) as handle:
        handle.set_data(reference_at(grid())[None].astype(np.float32))
        handle.voxel_size = PIXEL
    out_star, out_classes = folder / "out.star", folder / "out.mrc"
    refine_ok(
        stack,
        star,
        classes=str(reference),
        output_star=str(out_star),
        output_classes=str(out_classes),
        pixel_size=PIXEL,
        mask_radius=45.0,
        high_res=4.0,
        angular_step=0.0,
        search_range=15.0,
        autocenter=False,
        automask=False,
    )
    average = mrcfile.read(out_classes).reshape(BOX, BOX).astype(np.float64)
    return Refined(psi, shifts_a, ctf, noisy, read_star(out_star), average)


def test_the_star_gives_back_the_known_psi_and_shifts(refined: Refined) -> None:
    star = refined.star
    assert np.all(star["best_class"] == 1)
    psi_error = (star["psi"] - refined.psi + 180.0) % 360.0 - 180.0
    assert np.abs(psi_error).max() < 1.0  # degrees; measured 0.14
    assert np.abs(star["x_shift"] - refined.shifts[:, 0]).max() < 0.5  # Å; measured 0.1
    assert np.abs(star["y_shift"] - refined.shifts[:, 1]).max() < 0.5


def test_re_averaging_with_cistems_equation_gives_the_engines_class_average(
    refined: Refined,
) -> None:
    weighted = np.fft.irfft2(np.fft.rfft2(refined.images) * refined.ctf, s=(BOX, BOX))

    def re_average(sign: float) -> F64:
        total = np.zeros((BOX, BOX))
        for image, row in zip(weighted, refined.star, strict=True):
            shift = sign * np.array([row["x_shift"], row["y_shift"]]) / PIXEL
            total += cistem_class_frame(image, float(row["psi"]), shift)
        spectrum = np.fft.rfft2(total) / ((refined.ctf**2).sum(axis=0) + 1.0)
        return np.fft.irfft2(spectrum, s=(BOX, BOX))

    # from 30 Å on: below it the CTFs (8-20k Å defocus) are near zero and each average's
    # Wiener constant decides the weights, which says nothing about the poses
    def match(sign: float) -> float:
        return band_correlation(re_average(sign), refined.average, 30.0, 5.0, 40.0)

    assert match(+1.0) >= 0.99  # measured 0.996
    # with the shifts' sign flipped (the earlier engine's convention) it is clearly worse
    assert match(-1.0) < 0.8  # measured 0.65


def test_the_shared_image_functions_apply_the_same_equation() -> None:
    """``imaging.to_class_frame``/``from_class_frame`` (the scorer's re-average, the class split,
    the simulator's truth) take star values the same way."""
    from live2d_tui import imaging

    psi = np.array([0.0, 37.0, 211.5])
    shifts = np.array([[0.0, 0.0], [2.3, -1.6], [-3.4, 0.7]])  # pixels
    particles = cistem_particles(psi, shifts)
    reference = reference_at(grid())
    inside = np.hypot(*grid().transpose(2, 0, 1)) * PIXEL <= 40.0
    scale = np.abs(reference).max()
    framed = imaging.to_class_frame(particles, psi, shifts[:, 0], shifts[:, 1])
    back = imaging.from_class_frame(np.stack([reference] * 3), psi, shifts[:, 0], shifts[:, 1])
    for i in range(len(psi)):
        assert np.abs(framed[i] - reference)[inside].max() < 0.01 * scale
        assert np.abs(back[i] - particles[i])[inside].max() < 0.01 * scale
        # and the opposite shift is far off (unless there is none)
        wrong = imaging.to_class_frame(particles[i], psi[i], -shifts[i, 0], -shifts[i, 1])
        assert np.abs(wrong - reference)[inside].max() > 0.2 * scale or not shifts[i].any()
