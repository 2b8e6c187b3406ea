"""The Session tab's series, from plain arrays (live2d_tui/health.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from live2d_tui.health import (
    MAX_POINTS,
    CycleClasses,
    MovieArrays,
    choose_bin_hours,
    class_populations,
    prepare_health,
    thin,
)


def movies(
    times_h: list[float], *, kept: list[bool] | None = None, known: bool = True
) -> MovieArrays:
    n = len(times_h)
    in_table = np.array(kept if kept is not None else [True] * n)
    return MovieArrays(
        time=1_700_000_000.0 + 3600.0 * np.array(times_h),
        resolution=np.linspace(3.0, 5.0, n),
        defocus=np.full(n, 1.5),
        particles=np.where(in_table, 100, 0).astype(np.int64),
        in_table=in_table,
        verdict_known=np.full(n, known),
    )


def test_rates_per_hour_whatever_the_bin() -> None:
    # 10 hours, one movie a minute: quarter-hour bins, 60 movies and 6,000 particles per hour
    times = [i / 60 for i in range(600)]
    health = prepare_health(movies(times), [], table_name="goodparticles_X.star")
    assert health.bin_hours == 0.25
    assert health.micrographs_per_hour[:-1] == pytest.approx([60.0] * (len(health.bins) - 1))
    assert health.particles_per_hour[0] == pytest.approx(6000.0)
    assert (health.micrographs, health.micrographs_kept, health.particles) == (600, 600, 60000)
    assert health.span_hours == pytest.approx(599 / 60)
    # the partly elapsed last bin is scaled, not shown as a drop
    assert health.micrographs_per_hour[-1] == pytest.approx(60.0, rel=0.1)


def test_sparse_movies_get_wider_bins_and_a_true_last_rate() -> None:
    # one movie every 10 minutes for 1.5 h: 6 per hour in every bin, the last one included
    health = prepare_health(movies([i / 6 for i in range(10)]), [])
    assert health.bin_hours == 0.5  # 5-min bins would alternate 12/h and 0/h
    assert health.micrographs_per_hour == pytest.approx([6.0] * len(health.bins))
    # a lone early movie is one interval's worth, not a flood
    one = prepare_health(movies([0.0, 1 / 6, 2 / 6]), [])
    assert max(one.micrographs_per_hour) <= 12.0


def test_bin_widths() -> None:
    assert choose_bin_hours(0.5) == pytest.approx(1 / 12)
    assert choose_bin_hours(20.0) == 0.5
    assert choose_bin_hours(90.0) == 2.0
    assert choose_bin_hours(500.0) == math.ceil(500 / 48)


def test_rejected_percent_counts_decided_movies_only() -> None:
    kept = [True, False, True, False, False]  # the newest is not decided yet
    arrays = movies([0.0, 0.1, 0.2, 0.3, 0.4], kept=kept)
    arrays = MovieArrays(
        arrays.time, arrays.resolution, arrays.defocus, arrays.particles, arrays.in_table,
        np.array([True, True, True, True, False]),
    )  # fmt: skip
    health = prepare_health(arrays, [])
    decided = [p for p in health.rejected_percent if not math.isnan(p)]
    assert sum(decided) / len(decided) == pytest.approx(50.0)
    assert health.micrographs_kept == 2


def test_long_series_are_thinned_to_medians() -> None:
    x = np.arange(5000, dtype=float)
    y = np.where(x % 2 == 0, 1.0, np.nan)
    points = thin(x, y)
    assert len(points.x) <= MAX_POINTS and set(points.y) == {1.0}
    assert points.x[0] == 4.0 and points.x[-1] == pytest.approx(4995.0, abs=5)  # medians
    odd = thin(np.arange(1001, dtype=float), np.arange(1001, dtype=float), limit=10)
    assert len(odd.x) == 10 and odd.y[0] == 50.0 and odd.y[-1] == 954.5
    short = thin(np.array([0.0, 1.0]), np.array([2.0, np.nan]))
    assert short.x == (0.0,) and short.y == (2.0,)


def test_class_populations_follow_the_current_lineage() -> None:
    cycles = [
        CycleClasses(0, 0, True, (10, 0, 0)),
        CycleClasses(1, 0, False, (0, 5, 5)),
        CycleClasses(2, 0, True, (20, 0, 0, 0)),  # a new ab initio job: a new lineage
        CycleClasses(3, 0, False, (0, 1, 2, 3)),
        CycleClasses(4, 0, False, (0, 3, 2, 1)),
        CycleClasses(5, 1, False, (0, 9)),  # another generation: ignored
    ]
    assert class_populations(cycles[:5]).cycles == (3, 4)
    pops = class_populations(cycles[:5])
    assert pops.labels == ("class 1", "class 2", "class 3")
    assert pops.counts == ((1, 3), (2, 2), (3, 1))
    assert class_populations(cycles).cycles == (5,)
    many = [CycleClasses(7, 0, False, (0, *range(1, 13)))]
    top = class_populations(many)
    assert top.labels[0] == "class 12" and top.labels[-1] == "other"
    assert len(top.labels) == 9 and top.counts[-1] == (sum(range(1, 5)),)


def test_no_movies_yet() -> None:
    health = prepare_health(MovieArrays.empty(), [CycleClasses(1, 0, False, (0, 4))])
    assert health.start is None and health.bins == () and health.classes.cycles == (1,)
