"""Numerics of the engine: alignment, CTF sign, and dump/merge equivalence."""

from __future__ import annotations

from pathlib import Path

import mrcfile
import numpy as np
import pytest
from scipy import ndimage

from live2d_tui import fourier as nm
from live2d_tui.ctf import ctf_2d
from live2d_tui.engine.search import ClassSearch, SearchParams
from live2d_tui.formats.prompts import MERGE2D_TERMINATION
from live2d_tui.imaging import fourier_shift

from .helpers import ok, refine_ok, run_program
from .synth import make_set, make_views


def _params(box: int, nb: int, nc: int, **changes: float) -> SearchParams:
    values: dict[str, float] = {"coarse_step": 15.0, "fine_step": 2.0, "search_range": 0.0}
    values.update(changes)
    return SearchParams(
        box=box,
        pixel_size=3.0,
        nb=nb,
        nc=nc,
        high_res=2 * 3.0 * box / nb,
        low_res=300.0,
        smoothing=1.0,
        **values,
    )


def _ctf_values(defocus: np.ndarray) -> dict[str, np.ndarray]:
    """Per-particle CTF arrays for ``ClassSearch.run``: no astigmatism, 300 kV, Cs 2.7 mm."""
    count = len(defocus)
    return {
        "defocus_1": defocus,
        "defocus_2": defocus,
        "defocus_angle": np.zeros(count),
        "phase_shift": np.zeros(count),
        "voltage": np.full(count, 300.0),
        "cs": np.full(count, 2.7),
        "amplitude_contrast": np.full(count, 0.07),
    }


def test_crop_pad_keep_scale_and_rotation_matches_ndimage_centre() -> None:
    rng = np.random.default_rng(0)
    image = make_views(1, 32, rng)[0]
    spectrum = np.fft.rfft2(image)
    back = np.fft.irfft2(nm.pad_half(nm.crop_half(spectrum, 32), 32), s=(32, 32))
    assert np.allclose(back, image)
    low = np.fft.irfft2(nm.pad_half(nm.crop_half(spectrum, 16), 32), s=(32, 32))
    assert abs(low.sum() - image.sum()) < 1e-6 * abs(image.sum())
    # 4 × 90° is the identity (row/column 0 have no partner about N//2 in an even box)
    rotated = image
    for _ in range(4):
        rotated = nm.rotate_image(rotated, 90.0)
    assert np.allclose(rotated[1:, 1:], image[1:, 1:], atol=1e-9)
    # same sense as scipy.ndimage.rotate (whose centre (N-1)/2 equals N//2 for odd N)
    odd = make_views(1, 33, rng)[0]
    assert np.allclose(nm.rotate_image(odd, 30.0), ndimage.rotate(odd, 30.0, reshape=False))


@pytest.mark.parametrize("n", [31, 32])
@pytest.mark.parametrize("angle", [0.0, 13.0, 90.0, 200.5, -37.0])
def test_numpy_bilinear_rotation_equals_scipy_order_1(n: int, angle: float) -> None:
    image = np.random.default_rng(n).random((n, n))
    expected = nm.rotate_image(image, angle, order=1)
    assert np.allclose(nm.rotate_bilinear(image, angle), expected, atol=1e-12)


@pytest.mark.parametrize(
    ("psi", "dx", "dy"), [(0.0, 0.0, 0.0), (37.0, 2.3, -1.6), (211.5, -3.4, 0.7), (300.0, 1.0, 4.2)]
)
def test_search_recovers_known_rotation_and_shift(psi: float, dx: float, dy: float) -> None:
    box = 48
    rng = np.random.default_rng(1)
    view = make_views(1, box, rng)[0]
    defocus = 15000.0
    particle = fourier_shift(nm.rotate_image(view, psi), dx, dy)
    ctf = ctf_2d(box, 3.0, defocus, defocus, 0.0)
    particle = np.fft.irfft2(np.fft.rfft2(particle) * ctf, s=(box, box))
    params = _params(box, nb=box, nc=24)
    search = ClassSearch(view[None].astype(np.float32), params, np.ones((box, box // 2 + 1)), rng)
    result = search.run(particle[None].astype(np.float32), _ctf_values(np.array([defocus])))
    error = (result.psi[0] - psi + 180.0) % 360.0 - 180.0
    assert abs(error) <= 1.5  # fine step 2° (±1°) plus interpolation
    # cisTEM's convention: a particle moved by +d from its turned class has star shift −d
    assert result.x_shift[0] / 3.0 == pytest.approx(-dx, abs=0.35)
    assert result.y_shift[0] / 3.0 == pytest.approx(-dy, abs=0.35)
    assert result.best_class[0] == 0 and result.probability[0] == pytest.approx(1.0)
    assert result.score[0] > 90.0  # noise-free: normalised correlation close to 100


def test_class_sums_reach_past_the_search_limit() -> None:
    """The search stops at the high-resolution limit, the class sums do not: as in cisTEM they
    hold the aligned particles out to the average band's edge, so the ring at the limit is
    whole and the averages show detail beyond it (the first version cut the sums at the
    limit, leaving only the inner half of that ring)."""
    from live2d_tui.imaging import soft_circular_mask

    box, nb = 64, 22  # 3 Å/px: the search limit is 17.5 Å, ring 11 of the box
    rng = np.random.default_rng(8)
    # a view with detail at every frequency, so the annulus past the limit has signal
    view = rng.standard_normal((box, box)) * soft_circular_mask(box, 18.0, 4.0)
    params = _params(box, nb=nb, nc=nb, coarse_step=5.0, fine_step=5.0)
    band = params.average
    limit = box * params.pixel_size / params.high_res
    assert band.full >= limit + 0.5 and limit + 1.0 <= band.edge <= 1.5 * limit
    assert band.box > nb
    search = ClassSearch(
        view[None].astype(np.float32), params, np.ones((band.box, band.box // 2 + 1)), rng
    )
    count = 24
    psi = rng.uniform(0.0, 360.0, count)
    shifts = rng.uniform(-2.0, 2.0, (count, 2))
    defocus = rng.uniform(10000.0, 20000.0, count)
    particles = np.empty((count, box, box), dtype=np.float32)
    for i in range(count):
        moved = fourier_shift(nm.rotate_image(view, psi[i]), shifts[i, 0], shifts[i, 1])
        ctf = ctf_2d(box, 3.0, defocus[i], defocus[i], 0.0)
        particles[i] = np.fft.irfft2(np.fft.rfft2(moved) * ctf, s=(box, box))
    result = search.run(particles, _ctf_values(defocus))
    error = (result.psi - psi + 180.0) % 360.0 - 180.0
    assert np.abs(error).max() < 3.0  # the poses are right: what follows tests the sums
    sums, ctf2 = search.class_sums()
    r = nm.radius_half(band.box)
    truth = nm.crop_half(np.fft.rfft2(view), band.box)
    # noise-free and aligned: S = taper·C·V in the class frame, past the limit as inside it
    past = (r > limit + 0.5) & (r < band.edge - 0.5)
    s, expected = sums[0][past], (band.taper() * ctf2[0] * truth)[past]
    similarity = np.real(np.vdot(expected, s)) / (np.linalg.norm(s) * np.linalg.norm(expected))
    assert similarity > 0.9
    assert np.all(sums[0][r > band.edge] == 0) and np.all(ctf2[0][r > band.edge] == 0)


def test_rotating_a_disc_of_spectrum_needs_little_oversampling() -> None:
    """Rotating only the disc of radius R, oversampled to ~1.1·R instead of 2·n, gives the
    same rotation (checked against Gaussians rotated analytically)."""
    n, sigma = 74, 1.6
    rng = np.random.default_rng(2)
    centres = rng.uniform(-0.3 * n, 0.3 * n, (10, 2))
    y, x = np.indices((n, n), dtype=np.float64) - n // 2

    def blobs(angle: float) -> np.ndarray:
        a = np.deg2rad(angle)  # ndimage sense: content turns by +angle on [y, x] arrays
        cx = np.cos(a) * centres[:, 0] + np.sin(a) * centres[:, 1]
        cy = -np.sin(a) * centres[:, 0] + np.cos(a) * centres[:, 1]
        d2 = (x[None] - cx[:, None, None]) ** 2 + (y[None] - cy[:, None, None]) ** 2
        out: np.ndarray = np.exp(-d2 / (2 * sigma**2)).sum(axis=0)
        return out

    spectrum = np.fft.rfft2(blobs(0.0))[None, None]
    angles = np.array([13.0, 44.0, 67.5, 200.3])
    for radius in (None, 36.0):
        turned = nm.rotate_half_spectra(spectrum, angles, radius)[0]
        for angle, image in zip(angles, np.fft.irfft2(turned, s=(n, n)), strict=True):
            assert np.abs(image - blobs(angle)).max() < 1e-4


def test_sums_by_bin_equal_add_at() -> None:
    from live2d_tui.engine.search import _add_by_bin

    rng = np.random.default_rng(3)
    bins = rng.integers(0, 5, 40)
    values = rng.standard_normal((40, 3, 2)) + 1j * rng.standard_normal((40, 3, 2))
    expected = np.zeros((6, 3, 2), dtype=complex)
    np.add.at(expected, bins, values)
    target = np.zeros((6, 3, 2), dtype=complex)
    _add_by_bin(target, bins, values)
    assert np.allclose(target, expected)
    _add_by_bin(target, bins[:0], values[:0])  # nothing to add
    assert np.allclose(target, expected)


def _central_correlation(average: np.ndarray, view: np.ndarray, pixel: float = 3.0) -> float:
    """Best normalised correlation of an average with a view low-passed to 8 Å, over
    rotations (5° steps) and circular shifts."""
    n = view.shape[0]
    lowpass = nm.radius_half(n) <= n * pixel / 8.0
    target = np.fft.irfft2(np.fft.rfft2(view) * lowpass, s=(n, n))
    a = average - average.mean()
    fa = np.fft.rfft2(a)
    best = -1.0
    for angle in np.arange(0.0, 360.0, 5.0):
        b = nm.rotate_image(target, angle)
        b -= b.mean()
        cc = np.fft.irfft2(fa * np.conj(np.fft.rfft2(b)), s=(n, n))
        best = max(best, float(cc.max() / (np.linalg.norm(a) * np.linalg.norm(b))))
    return best


@pytest.mark.parametrize("invert", [True, False])
def test_ctf_corrected_average_is_protein_white(tmp_path: Path, invert: bool) -> None:
    data = make_set(tmp_path, n_particles=150, box=32, n_views=1, snr=1.0, seed=4)
    stack = data.stack
    if not invert:  # a raw-contrast stack (black protein): "Invert" = No must flip it back
        with mrcfile.open(data.stack) as mrc:
            black = -np.asarray(mrc.data)
        stack = tmp_path / "black.mrcs"
        with mrcfile.new(stack) as mrc:
            mrc.set_data(black.astype(np.float32))
    classes = tmp_path / "c0.mrc"
    common = {"invert": invert, "pixel_size": 3.0, "mask_radius": 40.0}
    refine_ok(
        stack,
        data.star,
        class_number=1,
        output_classes=str(classes),
        high_res=30.0,
        **common,
    )
    for cycle, high in enumerate((20.0, 12.0, 8.0), start=1):
        out = tmp_path / f"c{cycle}.mrc"
        refine_ok(
            stack,
            data.star,
            classes=str(classes),
            output_classes=str(out),
            high_res=high,
            **common,
        )
        classes = out
    with mrcfile.open(classes) as mrc:
        average = np.asarray(mrc.data, dtype=np.float64).reshape(-1, 32, 32)[0]
    assert _central_correlation(average, data.views[0]) > 0.8
    assert _central_correlation(-average, data.views[0]) < 0.6


def test_two_dumps_merged_equal_one_process(tmp_path: Path) -> None:
    data = make_set(tmp_path, n_particles=120, box=32, n_views=2, snr=0.5, seed=5)
    seed = tmp_path / "seed.mrc"
    refine_ok(data.stack, data.star, class_number=2, output_classes=str(seed), high_res=30.0)
    single = tmp_path / "single.mrc"
    refine_ok(
        data.stack,
        data.star,
        classes=str(seed),
        output_classes=str(single),
        high_res=12.0,
    )
    for job, (first, last) in enumerate(((1, 50), (51, 120)), start=1):
        refine_ok(
            data.stack,
            data.star,
            classes=str(seed),
            first_particle=first,
            last_particle=last,
            high_res=12.0,
            dump=True,
            dump_file=str(tmp_path / f"dump_{job}.dat"),
        )
    merged = tmp_path / "merged.mrc"
    result = run_program("merge2d", [str(merged), str(tmp_path / "dump_.dat"), "2"])
    ok(result, MERGE2D_TERMINATION)
    a, b = mrcfile.read(single), mrcfile.read(merged)
    assert a.shape == b.shape == (2, 32, 32)
    assert np.abs(a).max() > 0
    assert np.abs(a - b).max() <= 1e-3 * np.abs(a).max()


def test_resample_changes_pixel_size_in_the_same_box() -> None:
    from live2d_tui.engine.particles import resample

    n = 64
    y, x = np.indices((n, n), dtype=np.float64)
    # a Gaussian of σ = 6 px at 2 Å/px is σ = 4 px at 3 Å/px, at the same centre
    blob = np.exp(-((x - n // 2) ** 2 + (y - n // 2) ** 2) / (2 * 6.0**2)).astype(np.float32)
    out = resample(blob[None], 2.0, 3.0)[0]
    expected = np.exp(-((x - n // 2) ** 2 + (y - n // 2) ** 2) / (2 * 4.0**2))
    assert out.shape == (n, n)
    assert np.abs(out - expected).max() < 0.02


def test_memberships_count_the_whole_star() -> None:
    from live2d_tui.engine.refine2d import memberships
    from live2d_tui.formats.cistem_star import empty_rows

    rows = empty_rows(6)
    assert memberships(rows, 3) is None  # nothing assigned yet
    rows["best_class"] = [1, 1, -1, 2, 0, -2]  # unused rows count with |k|
    counts = memberships(rows, 3)
    assert counts is not None and list(counts) == [3, 2, 0]
