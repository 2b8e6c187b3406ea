"""Registration of a class to its previous average finds a known move."""

from __future__ import annotations

import numpy as np
import pytest

from live2d_tui.classify.streaming.registration import register
from live2d_tui.fourier import rotate_image
from live2d_tui.imaging import fourier_shift


def blobs(count: int, box: int, rng: np.random.Generator) -> np.ndarray:
    """Asymmetric images: a few Gaussian blobs each."""
    y, x = np.indices((box, box), dtype=np.float64)
    out = np.zeros((count, box, box))
    for image in out:
        for _ in range(5):
            cx, cy = rng.uniform(0.3, 0.7, 2) * box
            image += np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * (0.06 * box) ** 2))
    return out


def test_a_known_shift_and_rotation_are_found_and_an_unmoved_class_stays_put() -> None:
    rng = np.random.default_rng(3)
    views = blobs(3, 64, rng).astype(np.float32)
    moved = views.copy()
    moved[0] = fourier_shift(views[0], 1.5, -0.75)
    moved[1] = rotate_image(views[1], 4.0)
    moved[2] = 0.0  # an emptied class is not compared
    report = register(views, moved, 2.0, 8.0)
    assert [d.cls for d in report.classes] == [1, 2]
    first, second = report.classes
    assert first.dx == pytest.approx(1.5, abs=0.2) and first.dy == pytest.approx(-0.75, abs=0.2)
    assert abs(first.angle) <= 0.5 and first.correlation > 0.95
    assert abs(second.angle) == pytest.approx(4.0, abs=0.5) and second.shift < 0.3
    assert report.max_shift == pytest.approx(first.shift)
    assert len(report.moved(1.0)) == 1
    still = register(views, views.copy(), 2.0, 8.0)
    assert still.max_shift < 0.05 and still.max_angle == 0.0
    assert "drift" in still.summary()
