"""Frozen rules: a block refined from its own star with the whole star's rules gives what a job
of a full cycle over the whole star gives."""

from __future__ import annotations

from pathlib import Path

import mrcfile
import numpy as np
import pytest

from live2d_tui.engine.refine2d import core_members, memberships
from live2d_tui.formats.cistem_star import empty_rows, read_star, write_star
from live2d_tui.formats.engine_rules import (
    RULES_ENV,
    FrozenRules,
    read_rules,
    rules_from_star,
    write_rules,
)
from live2d_tui.formats.live2d_dump import read_dump
from live2d_tui.formats.prompts import REFINE2D_TERMINATION

from .helpers import ok, refine_lines, request, run_program
from .synth import make_set


def test_rules_round_trip_and_match_the_engines_own_rules(tmp_path: Path) -> None:
    star = empty_rows(40)
    star["position"] = np.arange(1, 41)
    star["best_class"] = np.r_[[1] * 20, [-2] * 12, [3] * 8]
    star["score"] = np.linspace(5.0, 25.0, 40)
    star["pixel_size"] = 1.5
    rules = rules_from_star(star, 4)
    assert rules.counts is not None
    assert np.array_equal(rules.counts, memberships(star, 4))
    assert np.array_equal(rules.core(star), core_members(star, star))
    assert np.array_equal(rules.core(star[25:]), core_members(star, star[25:]))
    write_rules(tmp_path / "r.npz", rules)
    back = read_rules(tmp_path / "r.npz")
    assert back.counts is not None and np.array_equal(back.counts, rules.counts)
    assert np.array_equal(back.core_thresholds, rules.core_thresholds)
    assert np.array_equal(back.noise_positions, star["position"])
    fresh = rules_from_star(empty_rows(3), 2)  # nothing assigned yet
    write_rules(tmp_path / "f.npz", fresh)
    assert read_rules(tmp_path / "f.npz").counts is None


def test_a_block_with_the_whole_stars_rules_equals_a_job_of_the_whole_star(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = make_set(tmp_path, n_particles=90, box=32, n_views=3, snr=0.3, seed=21)
    rows = read_star(data.star)
    rng = np.random.default_rng(4)
    # an earlier round: classes 1-3 from the truth, class 3 rare outside the block, scores
    rows["best_class"] = data.labels + 1
    rows["best_class"][:45][rows["best_class"][:45] == 3] = 1
    rows["score"] = rng.uniform(5.0, 30.0, len(rows)).round(2)
    whole = tmp_path / "whole.star"
    write_star(whole, rows)
    block = tmp_path / "block.star"
    write_star(block, rows[45:])
    references = tmp_path / "refs.mrc"
    with mrcfile.new(references) as handle:
        handle.set_data(data.views.astype(np.float32))

    def run(star: Path, name: str) -> tuple[np.ndarray, object]:
        answers = request(
            data.stack,
            star,
            classes=str(references),
            first_particle=46,
            last_particle=90,
            high_res=12.0,
            mask_radius=40.0,
            autocenter=False,
            dump=True,
            dump_file=str(tmp_path / f"{name}.dat"),
            output_star=str(tmp_path / f"{name}.star"),
        )
        ok(run_program("refine2d", refine_lines(answers)), REFINE2D_TERMINATION)
        return read_star(tmp_path / f"{name}.star"), read_dump(tmp_path / f"{name}.dat")

    full_rows, full_dump = run(whole, "full")
    rules_file = tmp_path / "rules.npz"
    write_rules(rules_file, rules_from_star(rows, 3))
    monkeypatch.setenv(RULES_ENV, str(rules_file))
    frozen_rows, frozen_dump = run(block, "frozen")
    monkeypatch.delenv(RULES_ENV)
    _, own_dump = run(block, "own")
    assert np.array_equal(frozen_rows, full_rows)
    assert np.allclose(frozen_dump.sums, full_dump.sums)  # type: ignore[attr-defined]
    assert np.array_equal(frozen_dump.nonzero, full_dump.nonzero)  # type: ignore[attr-defined]
    # from its own star the block ranks its classes differently: the sums differ
    assert not np.allclose(own_dump.sums, full_dump.sums)  # type: ignore[attr-defined]


def test_frozen_core_keeps_rows_of_unknown_classes() -> None:
    rules = FrozenRules(None, np.array([-np.inf, 10.0]), np.zeros(0, np.int64), np.zeros(0))
    rows = empty_rows(4)
    rows["best_class"] = [1, 1, 2, 0]
    rows["score"] = [5.0, 15.0, 1.0, 1.0]
    assert rules.core(rows).tolist() == [False, True, True, True]
