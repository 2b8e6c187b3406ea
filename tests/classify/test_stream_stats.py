"""Running class statistics give exactly what the engine computes from the whole star."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from live2d_tui.classify.streaming.stats import ClassStats, StatsError
from live2d_tui.formats.cistem_star import empty_rows, format_rows, header_text, parse_star_text
from live2d_tui.formats.engine_rules import core_thresholds, memberships


def star_rows(n: int, k: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rows = empty_rows(n)
    rows["position"] = np.arange(1, n + 1)
    rows["best_class"] = rng.integers(-k, k + 1, n)
    rows["score"] = rng.normal(15.0, 4.0, n)
    # as read back from a star: two decimals
    return parse_star_text(header_text() + format_rows(rows))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_exact_thresholds_and_counts_after_adding_and_removing_blocks(
    seed: int, tmp_path: Path
) -> None:
    k = 6
    rows = star_rows(900, k, seed)
    stats = ClassStats.empty(k)
    for start in range(0, 900, 150):
        stats.add(rows[start : start + 150])
    assert np.array_equal(stats.core_thresholds(), core_thresholds(rows, k))
    assert np.array_equal(stats.counts(), memberships(rows, k))  # type: ignore[arg-type]
    # a revisited block: out with its old rows, in with new ones
    new = star_rows(150, k, seed + 10)
    new["position"] = rows["position"][300:450]
    stats.add(rows[300:450], sign=-1)
    stats.add(new)
    current = np.concatenate([rows[:300], new, rows[450:]])
    assert np.array_equal(stats.core_thresholds(), core_thresholds(current, k))
    stats.save(tmp_path / "s.npz")
    back = ClassStats.load(tmp_path / "s.npz")
    assert np.array_equal(back.core_thresholds(), stats.core_thresholds())
    assert back.total == 900


def test_taking_out_rows_never_counted_is_refused() -> None:
    stats = ClassStats.empty(3)
    rows = star_rows(10, 3, 5)
    with pytest.raises(StatsError):
        stats.add(rows, sign=-1)
    assert ClassStats.empty(3).counts() is None
