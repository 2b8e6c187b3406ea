"""Phantom, projection conventions, CTF sign and the SNR definition of the simulated images."""

from __future__ import annotations

from pathlib import Path

import mrcfile
import numpy as np
import pytest

from live2d_tui import imaging
from live2d_tui.ctf import ctf_2d
from live2d_tui.simulate.particles import MicrographCTF, draw_particles, render_particles
from live2d_tui.simulate.phantom import (
    Phantom,
    euler_matrix,
    fibonacci_views,
    make_phantom,
    project,
    viewing_direction,
)
from live2d_tui.simulate.truth import load_truth

from .test_sim_formats import column, read_warp_star


def ncc(a: np.ndarray, b: np.ndarray) -> float:  # type: ignore[type-arg]
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def band_ncc(a: np.ndarray, b: np.ndarray, pixel_size: float = 3.0) -> float:  # type: ignore[type-arg]
    """NCC after a 1/40-1/8 Å⁻¹ band-pass: raw NCC is dominated by the low-resolution blob
    (docs/simulation-and-scoring.md#why-frc-and-not-a-raw-correlation)."""
    n = a.shape[-1]
    k = np.hypot(*np.meshgrid(np.fft.rfftfreq(n, pixel_size), np.fft.fftfreq(n, pixel_size)))
    band = (k >= 1 / 40) & (k <= 1 / 8)
    fa = np.fft.irfft2(np.fft.rfft2(a) * band, s=a.shape)
    fb = np.fft.irfft2(np.fft.rfft2(b) * band, s=b.shape)
    return ncc(fa, fb)


def test_euler_matrix_is_a_rotation_with_relion_viewing_direction() -> None:
    rng = np.random.default_rng(0)
    angles = rng.uniform(-180, 180, (50, 3))
    m = euler_matrix(angles[:, 0], angles[:, 1], angles[:, 2])
    assert np.allclose(m @ m.transpose(0, 2, 1), np.eye(3), atol=1e-12)
    assert np.allclose(np.linalg.det(m), 1.0)
    assert np.allclose(m[:, 2, :], viewing_direction(angles[:, 0], angles[:, 1]))


def test_phantom_size_and_asymmetry() -> None:
    phantom = make_phantom(160.0)
    assert 10 <= len(phantom.sigmas) <= 60
    extent = np.linalg.norm(phantom.centres, axis=1) + phantom.sigmas
    assert 60.0 < extent.max() < 80.0
    # distinct views give distinct projections, and no view matches its own mirror image
    views = fibonacci_views(6)
    proj = project(phantom, views[:, 0], views[:, 1], 0.0, box=64, pixel_size=3.0)
    for i in range(6):
        mirror = max(ncc(imaging.rotate(proj[i][:, ::-1], a), proj[i]) for a in range(0, 360, 5))
        assert mirror < 0.95, (i, mirror)
        for j in range(i + 1, 6):
            best = max(ncc(imaging.rotate(proj[i], a), proj[j]) for a in range(0, 360, 5))
            assert best < 0.95, (i, j, best)


def test_phantom_json_round_trip() -> None:
    phantom = make_phantom(170.0, seed=3)
    again = Phantom.from_json(phantom.to_json())
    assert np.array_equal(again.centres, phantom.centres)
    assert np.array_equal(again.sigmas, phantom.sigmas)


def test_projection_follows_the_imaging_in_plane_convention() -> None:
    phantom = make_phantom(150.0)
    base = project(phantom, 40.0, 70.0, 0.0, box=64, pixel_size=3.0)[0]
    for psi in (25.0, -110.0):
        turned = project(phantom, 40.0, 70.0, psi, box=64, pixel_size=3.0)[0]
        assert ncc(imaging.rotate(base, psi), turned) > 0.999  # spline-interpolated
        assert ncc(imaging.rotate(base, -psi), turned) < 0.9
    # a RELION origin (ox, oy) moves the content by (−ox, −oy): cisTEM refine2d shift = +origin
    moved = project(phantom, 40.0, 70.0, 0.0, box=64, pixel_size=3.0, shift_x=-4.5, shift_y=7.5)
    expected = imaging.fourier_shift(base, -1.5, 2.5)

    # equal up to the Nyquist row/column, where a sub-pixel phase ramp is ambiguous
    def no_nyquist(image: np.ndarray) -> np.ndarray:  # type: ignore[type-arg]
        f = np.fft.rfft2(image)
        f[32, :] = 0
        f[:, 32] = 0
        return np.fft.irfft2(f, s=image.shape)

    assert np.allclose(no_nyquist(moved[0]), no_nyquist(expected), atol=1e-9 * np.abs(base).max())


def test_truth_convention_reproduces_the_particles(small_warp_session: Path) -> None:
    """particle ≈ from_class_frame(reference_psi0, psi, ox/px, oy/px) up to CTF and noise:
    the aligned, phase-flipped average of one view matches the truth reference."""
    folder = small_warp_session
    truth = load_truth(folder / "truth")
    labels, rows = read_warp_star(folder / "goodparticles_BoxNet2Mask_20180918.star")
    names = column(labels, rows, "rlnImageName")
    with mrcfile.open(folder / "truth" / "references.mrcs") as mrc:
        refs = np.asarray(mrc.data, dtype=np.float64)
    index = truth.index()
    rows_t = np.array([index[n] for n in names])
    t = truth.take(rows_t)
    images = []
    for name in names:
        slot, stack = name.split("@")
        with mrcfile.open(folder / stack) as mrc:
            images.append(np.asarray(mrc.data[int(slot) - 1], dtype=np.float64))
    data = np.stack(images)
    ctf = ctf_2d(64, 3.0, t.defocus_u, t.defocus_v, t.defocus_angle, phase_shift_deg=t.phase_shift)
    flipped = np.fft.irfft2(np.fft.rfft2(data) * np.sign(ctf), s=(64, 64))
    aligned = imaging.to_class_frame(flipped, t.psi, t.origin_x / 3.0, t.origin_y / 3.0)
    for view in range(4):
        members = t.view == view
        assert members.sum() > 20
        average = aligned[members].mean(axis=0)
        scores = [band_ncc(average, refs[k]) for k in range(4)]
        # CTF sign: positive correlation with the clean projection, best with its own view
        assert scores[view] > 0.8, scores
        assert int(np.argmax(scores)) == view
        # and with the wrong psi sign the match is lost
        wrong = imaging.to_class_frame(flipped[members], -t.psi[members], 0.0, 0.0).mean(axis=0)
        assert band_ncc(wrong, refs[view]) < scores[view] - 0.3


def test_snr_definition_and_warp_normalisation() -> None:
    """Noise σ² = var(CTF-modulated clean image over the whole box) / SNR, then the background
    outside Diameter/2 gets mean 0 and σ 1 (protein white)."""
    phantom = make_phantom(150.0)
    ctf = MicrographCTF(defocus=1.5, defocus_delta=0.02, defocus_angle=30.0, phase_shift=0.0,
                        resolution=4.0)  # fmt: skip
    rng = np.random.default_rng(1)
    params = draw_particles(rng, 60, ctf, views=0, view_jitter=0.0, max_shift_px=2.0,
                            pixel_size=3.0, micrograph_px=4096, box=64)  # fmt: skip
    images = render_particles(phantom, params, np.random.default_rng(2), box=64, pixel_size=3.0,
                              diameter=150.0, snr=0.05, voltage=300.0, cs=2.7,
                              amplitude_contrast=0.07)  # fmt: skip
    spectrum = np.fft.rfft2(
        project(phantom, params.rot, params.tilt, params.psi, box=64, pixel_size=3.0,
                shift_x=-params.origin_x, shift_y=-params.origin_y)
    )  # fmt: skip
    c = ctf_2d(64, 3.0, params.defocus_u, params.defocus_v, params.defocus_angle)
    clean = np.fft.irfft2(spectrum * c, s=(64, 64))
    ratios = []
    for image, signal in zip(images.astype(np.float64), clean, strict=True):
        design = np.stack([signal.ravel(), np.ones(signal.size)], axis=1)
        (slope, _), *_ = np.linalg.lstsq(design, image.ravel(), rcond=None)
        residual = image.ravel() - design @ np.linalg.lstsq(design, image.ravel(), rcond=None)[0]
        assert slope > 0  # protein white: the image is +CTF-modulated projection + noise
        ratios.append(slope**2 * signal.var() / residual.var())
    assert np.median(ratios) == pytest.approx(0.05, rel=0.1)
    outside = imaging.radius_grid(64) > 25
    assert np.allclose(images[:, outside].mean(axis=1), 0, atol=1e-4)
    assert np.allclose(images[:, outside].std(axis=1), 1, atol=1e-3)
