"""The per-class half-set consistency estimate: figures on real classes, none on noise or on
small classes, the noise model behind that rule, the cap, and the cache beside the cycle."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from live2d_tui.formats.cistem_star import empty_rows, read_star, write_star
from live2d_tui.resolution import crossing_ring
from live2d_tui.results import quality
from live2d_tui.simulate.oracle import oracle_classification
from live2d_tui.simulate.score import original_names_from_relion_star, score_classes
from live2d_tui.simulate.warp_writer import write_stack


def noise_class(
    rng: np.random.Generator, n: int, box: int, px: float
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` particles of pure noise with random poses and CTFs, as star rows."""
    rows = empty_rows(n)
    rows["position"] = np.arange(1, n + 1)
    rows["psi"] = rng.uniform(0, 360, n)
    rows["x_shift"] = rng.uniform(-3, 3, n) * px
    rows["y_shift"] = rng.uniform(-3, 3, n) * px
    rows["defocus_1"] = rows["defocus_2"] = rng.uniform(8000, 25000, n)
    rows["voltage"], rows["pixel_size"] = 300.0, px
    return rng.standard_normal((n, box, box)).astype(np.float32), rows


def test_pure_noise_gets_no_figure_and_the_noise_model_fits() -> None:
    rng = np.random.default_rng(7)
    box, px = 64, 3.0
    mask = quality.class_mask(box, 0.3 * box * px, px)
    sigma = quality.noise_sigma(box, mask)
    curves, crossings = [], []
    for _ in range(60):
        images, rows = noise_class(rng, 120, box, px)
        curve = quality.half_set_curve(images, rows, px, mask)
        curves.append(curve)
        crossings.append(crossing_ring(curve, quality.THRESHOLD))
        assert quality.figure(curve, box, px, 120, sigma) == (None, "no consistent signal")
    # the plain 0.143 crossing alone would give noise a figure now and then: the gate matters
    assert max(crossings) > quality.MIN_RINGS
    # the FRC of noise scatters as the model says (variance ratio near 1 beyond ring 2)
    ratio = np.asarray(curves).var(axis=0)[3:20] / sigma[3:20] ** 2
    assert 0.7 < float(np.median(ratio)) < 1.4


def test_small_classes_get_no_figure() -> None:
    curve = np.ones(33)
    sigma = np.full(33, 0.1)
    assert quality.figure(curve, 64, 3.0, 49, sigma) == (None, "fewer than 50 used particles")
    assert quality.figure(curve, 64, 3.0, 50, sigma) == (6.0, "")


def test_evenly_spaced_cap() -> None:
    assert quality.evenly_spaced(5, 10).tolist() == [0, 1, 2, 3, 4]
    picked = quality.evenly_spaced(10_000, 1000)
    assert len(picked) == 1000 and picked[0] == 0 and picked[-1] == 9999
    assert np.all(np.diff(picked) >= 9)


def test_true_classes_get_figures_like_the_scorers_half_sets(
    small_warp_session: Path, tmp_path: Path
) -> None:
    oracle = oracle_classification(small_warp_session, tmp_path / "oracle")
    # the scorer masks at 0.45 N: give the estimate the same radius to compare the numbers
    box, px = 64, oracle.pixel_size
    result = quality.estimate_cycle(
        7, oracle.star, oracle.classes, oracle.stack, mask_radius=0.45 * box * px
    )
    card = score_classes(
        oracle.classes,
        oracle.star,
        oracle.stack,
        original_names_from_relion_star(oracle.relion_star),
        small_warp_session / "truth",
        pixel_size=px,
    )
    scorer = {c.class_number: c.half_frc0143 for c in card.classes}
    rows = read_star(oracle.star)
    assert result.particles == len(rows) and result.cycle == 7
    for c in result.classes:
        members = rows["best_class"] == c.class_number
        assert c.members == c.used == int(members.sum())
        assert c.sampled == min(c.used, quality.DEFAULT_CAP)
        assert c.mean_score == pytest.approx(float(rows["score"][members].mean()))
        assert len(c.curve) == box // 2 + 1
        assert c.resolution is not None and c.reason == ""
        # the same re-average and FRC as the scorer's: the same ring, or the next one (the
        # masks' edges differ by a pixel)
        expected = scorer[c.class_number]
        assert expected is not None
        assert abs(box * px / c.resolution - box * px / expected) <= 1.01


def test_cycle_estimate_cache_and_cap(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    box, px = 32, 4.0
    images, rows = noise_class(rng, 300, box, px)
    rows["best_class"] = np.where(np.arange(300) < 240, 1, 2)
    rows["best_class"][:20] *= -1  # 20 members of class 1 not used this round
    stack, star, classes = (
        tmp_path / "stack.mrcs",
        tmp_path / "cycle_4.star",
        tmp_path / "cycle_4.mrc",
    )
    write_stack(stack, images, px, float16=False)
    write_star(star, rows)
    write_stack(classes, np.zeros((3, box, box), np.float32), px, float16=False)
    result = quality.estimate_cycle(4, star, classes, stack, mask_radius=50.0, cap=100)
    one, two, three = result.classes
    assert (one.members, one.used, one.sampled) == (240, 220, 100)
    assert (two.members, two.used, two.sampled) == (60, 60, 60)
    assert (three.members, three.used, three.resolution, three.mean_score) == (0, 0, None, None)
    assert three.reason == "fewer than 50 used particles"
    assert one.resolution is None and one.reason == "no consistent signal"  # noise
    assert result.fraction(1) == pytest.approx(0.8)
    assert "at most 100 particles per class" in result.describe()
    path = quality.write_cache(tmp_path, result)
    assert path.name == "cycle_4.quality.json"
    again = quality.read_cached(tmp_path, 4, star=star, classes=classes)
    assert again is not None and again.classes == result.classes
    # a rewritten star makes the cache stale
    os.utime(star, ns=(1, 1))
    assert quality.read_cached(tmp_path, 4, star=star, classes=classes) is None
    path.write_text("{ torn")
    assert quality.read_cached(tmp_path, 4) is None
