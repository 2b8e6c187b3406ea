"""The scorer: metric definitions, the RELION name column, and sanity on oracle/random classes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from live2d_tui import imaging
from live2d_tui.simulate import metrics
from live2d_tui.simulate.averaging import align_reference
from live2d_tui.simulate.oracle import oracle_classification
from live2d_tui.simulate.phantom import make_phantom, project
from live2d_tui.simulate.score import original_names_from_relion_star, score_classes


def test_frc_of_identical_and_independent_images() -> None:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((64, 64))
    assert np.allclose(metrics.frc(a, a)[1:], 1.0)
    assert np.allclose(metrics.frc(a, -a)[1:], -1.0)
    curves = [metrics.frc(rng.standard_normal((64, 64)), rng.standard_normal((64, 64)))
              for _ in range(20)]  # fmt: skip
    assert abs(float(np.mean(curves))) < 0.05
    # a curve that never drops scores Nyquist; the first ring below the threshold decides
    assert metrics.crossing_resolution(np.ones(33), 0.5, 64, 3.0) == 6.0
    curve = np.ones(33)
    curve[8:] = 0.2
    assert metrics.crossing_resolution(curve, 0.5, 64, 3.0) == pytest.approx(64 * 3.0 / 8)


def test_partition_metrics() -> None:
    truth = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2])
    assert metrics.purity(truth, truth) == 1.0
    assert metrics.adjusted_rand_index(truth, truth) == pytest.approx(1.0)
    relabelled = np.array([5, 5, 5, 3, 3, 3, 9, 9, 9])
    assert metrics.adjusted_rand_index(truth, relabelled) == pytest.approx(1.0)
    # over-splitting keeps purity at 1 but lowers ARI
    split = np.arange(9)
    assert metrics.purity(truth, split) == 1.0
    assert metrics.adjusted_rand_index(truth, split) == pytest.approx(0.0)
    # Hubert & Arabie's worked value for this pair of labelings
    a = np.array([0, 0, 1, 1])
    b = np.array([0, 1, 0, 1])
    assert metrics.adjusted_rand_index(a, b) == pytest.approx(-0.5)
    rng = np.random.default_rng(1)
    big = rng.integers(0, 5, 5000)
    assert abs(metrics.adjusted_rand_index(big, rng.integers(0, 5, 5000))) < 0.01


def test_angular_spread() -> None:
    d = np.array([[0.0, 0.0, 1.0]] * 9 + [[1.0, 0.0, 0.0]])
    median, within = metrics.angular_spread(d)
    assert median < 10 and within == pytest.approx(0.9)
    mirrored = np.array([[0.0, 0.0, 1.0]] * 3 + [[0.0, 0.05, -1.0]] * 2)
    assert metrics.angular_spread(mirrored, fold_mirrors=True)[1] == 1.0
    assert metrics.angular_spread(mirrored)[1] == pytest.approx(0.6)


def test_alignment_recovers_angle_and_shift() -> None:
    ref = project(make_phantom(150.0), 10.0, 50.0, 0.0, box=64, pixel_size=3.0)[0]
    image = imaging.fourier_shift(imaging.rotate(ref, 47.0), 2.3, -1.6)
    ncc, angle, dx, dy = align_reference(image, ref)
    assert ncc > 0.95
    assert angle % 360 == pytest.approx(47.0, abs=1.0)
    assert (dx, dy) == pytest.approx((2.3, -1.6), abs=0.25)


def test_original_names_by_label(tmp_path: Path) -> None:
    star = tmp_path / "combined_stack_relion.star"
    star.write_text(
        "\n# version 30001\n\ndata_optics\n\nloop_\n_rlnOpticsGroupName #1\n_rlnImageSize #2\n"
        "opticsGroup1 64\n\n\n# version 30001\n\ndata_particles\n\nloop_\n"
        "_rlnMicrographName #1\n_rlnImageOriginalName #2\n_rlnImageName #3\n"
        "a.tif 0000003@particles/a_M.mrcs 0000001@combined_stack.mrcs\n"
        "b.tif 0000001@particles/b_M.mrcs 0000002@combined_stack.mrcs\n",
        encoding="utf-8",
    )
    assert original_names_from_relion_star(star) == [
        "0000003@particles/a_M.mrcs",
        "0000001@particles/b_M.mrcs",
    ]
    bad = tmp_path / "bad.star"
    bad.write_text("data_particles\nloop_\n_rlnImageName #1\nx\n", encoding="utf-8")
    with pytest.raises(ValueError, match="rlnImageOriginalName"):
        original_names_from_relion_star(bad)


def test_true_grouping_scores_near_the_limit_and_random_does_not(
    small_warp_session: Path, tmp_path: Path
) -> None:
    limit = 2 * 3.0  # Nyquist at 3 Å/px
    views = 4
    cards = {}
    for grouping in ("truth", "random"):
        files = oracle_classification(small_warp_session, tmp_path / grouping, grouping=grouping)
        cards[grouping] = score_classes(
            files.classes,
            files.star,
            files.stack,
            original_names_from_relion_star(files.relion_star),
            small_warp_session / "truth",
            pixel_size=files.pixel_size,
        )
    oracle, random = cards["truth"], cards["random"]
    assert oracle.purity == 1.0 and oracle.ari == pytest.approx(1.0)
    assert oracle.views_recovered == 1.0
    assert oracle.median_frc05 <= 2.0 * limit
    assert all(c.matched_view == c.majority_view for c in oracle.classes)
    assert oracle.median_half_frc0143 is not None and oracle.median_half_frc0143 <= 2.0 * limit
    assert oracle.median_angular_spread < 3.0  # the ±2° jitter of the views
    assert random.purity is not None and random.purity <= 1.5 / views
    assert random.ari is not None and abs(random.ari) < 0.05
    assert random.median_frc05 > 4.0 * limit
    # the continuous measure at one ring: by hand from the curves, and far apart for the two
    ring = round(oracle.box * oracle.pixel_size / (2.0 * limit))
    by_hand = np.mean([c.frc_curve[ring] for c in oracle.classes])
    assert oracle.mean_frc_at(2.0 * limit) == pytest.approx(by_hand)
    assert oracle.mean_frc_at(2.0 * limit) > 0.5 > random.mean_frc_at(2.0 * limit)
    assert random.median_angular_spread > 30.0


def test_continuous_orientations_angular_spread(make_warp_session, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    session = make_warp_session(micrographs=4, particles_per_micrograph=60, views=0, seed=2)
    spreads = {}
    for grouping in ("truth", "random"):
        files = oracle_classification(session, tmp_path / grouping, grouping=grouping)
        card = score_classes(
            files.classes, files.star, files.stack,
            original_names_from_relion_star(files.relion_star), session / "truth",
            pixel_size=files.pixel_size,
        )  # fmt: skip
        assert card.purity is None and card.true_views == 0
        assert all(c.matched_view == -1 for c in card.classes)
        spreads[grouping] = card.median_angular_spread
    assert spreads["truth"] < 30.0 < spreads["random"]


def test_cli_prints_json(small_warp_session: Path, tmp_path: Path) -> None:
    files = oracle_classification(small_warp_session, tmp_path / "o")
    result = subprocess.run(
        [sys.executable, "-m", "live2d_tui.simulate.score", str(files.classes), str(files.star),
         str(files.stack), str(files.relion_star), str(small_warp_session / "truth"), "--json"],
        capture_output=True, text=True, check=False, timeout=240,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    card = json.loads(result.stdout)
    assert card["purity"] == 1.0 and len(card["classes"]) == 4
    text = subprocess.run(
        [sys.executable, "-m", "live2d_tui.simulate.score", str(files.classes), str(files.star),
         str(files.stack), str(files.relion_star), str(small_warp_session / "truth")],
        capture_output=True, text=True, check=False, timeout=240,
    )  # fmt: skip
    assert "purity 1.000" in text.stdout


def test_small_and_unassigned_classes(small_warp_session: Path, tmp_path: Path) -> None:
    from live2d_tui.formats.cistem_star import read_star, write_star

    files = oracle_classification(small_warp_session, tmp_path / "o")
    rows = read_star(files.star)
    rows["best_class"][rows["best_class"] == 4] = 0  # unassigned particles are not members
    rows["best_class"][np.flatnonzero(rows["best_class"] == 3)[1:]] = 2  # one lone member
    write_star(files.star, rows)
    card = score_classes(
        files.classes, files.star, files.stack,
        original_names_from_relion_star(files.relion_star), small_warp_session / "truth",
        pixel_size=files.pixel_size,
    )  # fmt: skip
    by_class = {c.class_number: c for c in card.classes}
    assert sorted(by_class) == [1, 2, 3]
    assert by_class[3].members == 1 and by_class[3].half_frc0143 is None
    assert card.particles == int((rows["best_class"] > 0).sum())
    assert by_class[2].purity < 1.0 and card.purity is not None and card.purity < 1.0


def test_pose_limited_frc_follows_the_stars_poses(small_warp_session: Path, tmp_path: Path) -> None:
    """True poses give a pose-limited FRC near Nyquist; scrambled psi in the star makes it much
    worse while the class averages (and so FRC0.5) are unchanged."""
    from live2d_tui.formats.cistem_star import read_star, write_star

    files = oracle_classification(small_warp_session, tmp_path / "o")
    names = original_names_from_relion_star(files.relion_star)

    def card():  # type: ignore[no-untyped-def]
        return score_classes(
            files.classes, files.star, files.stack, names, small_warp_session / "truth",
            pixel_size=files.pixel_size,
        )  # fmt: skip

    true_poses = card()
    nyquist = 2.0 * files.pixel_size
    assert true_poses.median_pose_frc05 <= 1.5 * nyquist
    assert all(c.pose_frc05 <= c.frc05 + 1e-9 for c in true_poses.classes)
    rows = read_star(files.star)
    rows["psi"] += np.random.default_rng(0).normal(0.0, 30.0, len(rows))
    write_star(files.star, rows)
    scrambled = card()
    assert scrambled.median_frc05 == true_poses.median_frc05
    assert scrambled.median_pose_frc05 > 1.5 * true_poses.median_pose_frc05
