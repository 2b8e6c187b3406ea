"""CTF sign and shape; the in-plane convention's inverse pair."""

from __future__ import annotations

import numpy as np

from live2d_tui.ctf import ctf_2d, electron_wavelength
from live2d_tui.imaging import fourier_crop, fourier_shift, from_class_frame, to_class_frame


def test_wavelength_at_300kv() -> None:
    assert abs(electron_wavelength(300.0) - 0.019687) < 1e-5


def test_ctf_is_positive_amplitude_contrast_at_origin_and_batches() -> None:
    single = ctf_2d(64, 2.0, 15000.0, 14000.0, 30.0)
    assert single.shape == (64, 33)
    assert abs(single[0, 0] - 0.07) < 1e-9
    batch = ctf_2d(
        64, 2.0, np.array([15000.0, 20000.0]), np.array([14000.0, 20000.0]), np.array([30.0, 0.0])
    )
    assert batch.shape == (2, 64, 33)
    assert np.allclose(batch[0], single)
    shifted = ctf_2d(64, 2.0, 15000.0, 15000.0, 0.0, phase_shift_deg=90.0)
    assert shifted[0, 0] > 0.99  # a 90° phase plate turns the origin into full contrast


def test_astigmatism_axis_follows_the_angle() -> None:
    """Along the U axis the defocus is U; rotating the angle by 90° swaps U and V."""
    a = ctf_2d(128, 1.0, 20000.0, 10000.0, 0.0, rfft=False)
    b = ctf_2d(128, 1.0, 10000.0, 20000.0, 90.0, rfft=False)
    assert np.allclose(a, b, atol=1e-9)


def test_in_plane_transforms_invert_each_other() -> None:
    rng = np.random.default_rng(0)
    img = np.zeros((48, 48))
    img[14:20, 20:30] = 1.0
    img[25:33, 18:22] = 0.5
    img = fourier_crop(fourier_crop(img, 96), 48)  # band-limit so rotations are clean
    particle = from_class_frame(img, 37.0, 2.25, -1.5)
    back = to_class_frame(particle, 37.0, 2.25, -1.5)
    assert np.corrcoef(img.ravel(), back.ravel())[0, 1] > 0.98
    moved = fourier_shift(img, 3.0, 0.0)
    assert np.allclose(np.roll(img, 3, axis=1), moved, atol=1e-9)
    noise = rng.standard_normal((2, 32, 32))
    assert fourier_crop(noise, 32) is noise
