"""Pure parts of streaming: block planning, fusion, history, misfits, free slots."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from live2d_tui.classify.streaming.history import cycles_to_forget
from live2d_tui.classify.streaming.index import Block, StreamIndex
from live2d_tui.classify.streaming.plan import fusions, new_blocks, plan_update, revisits
from live2d_tui.classify.streaming.reseed import MISFIT_SPREADS, free_slots, misfits
from live2d_tui.classify.streaming.startail import StarCursor
from live2d_tui.classify.streaming.stats import ClassStats
from live2d_tui.formats.cistem_star import empty_rows
from live2d_tui.formats.dumps import DumpFormat


def block(i: int, first: int, last: int, visited: int, rows: int = 10, size: int = 100) -> Block:
    return Block(i, first, last, visited, f"d{i}", f"s{i}", (f"x{i}",), rows, size)


def index(blocks: list[Block], position: int) -> StreamIndex:
    return StreamIndex(
        engine=DumpFormat.LIVE2D, stack="s", box=16, pixel_size=1.0, classes=4, base_cycle=0,
        cycle=5, cursor=StarCursor(0, position), next_block=len(blocks), blocks=tuple(blocks),
        total="t", stats="st", averages="a", context="c", pool="", key={},
    )  # fmt: skip


def test_new_blocks_split_the_active_particles_evenly_and_cover_the_range() -> None:
    active = np.r_[11:20, 25:56]  # 40 active in 11..60, a gap of inactive positions
    blocks = new_blocks(active, 11, 60, batch=15)
    assert len(blocks) == 3  # round(40 / 15)
    assert blocks[0].first == 11 and blocks[-1].last == 60
    assert all(a.last + 1 == b.first for a, b in itertools.pairwise(blocks))
    assert sum(b.active for b in blocks) == 40
    assert max(b.active for b in blocks) - min(b.active for b in blocks) <= 1
    assert new_blocks(np.zeros(0, np.int64), 5, 9, 10)[0].active == 0


def test_an_update_waits_for_a_batch_and_revisits_the_least_recent_blocks() -> None:
    state = index([block(0, 1, 10, 3), block(1, 11, 20, 1), block(2, 21, 30, 2)], 30)
    active = np.arange(1, 45)
    assert plan_update(state, active, 44, number=6, batch=20, revisit=1) is None
    plan = plan_update(state, active, 44, number=6, batch=10, revisit=2)
    assert plan is not None and plan.new_particles == 14 and plan.revisit == (1, 2)
    assert revisits(state, 0, all_blocks=True) == (1, 2, 0)
    forced = plan_update(state, active, 30, number=6, batch=10, revisit=1, force=True)
    assert forced is not None and forced.new == () and forced.revisit == (1,)
    # new positions that are all inactive still get a block: they may become active later
    idle = plan_update(state, active[:20], 36, number=6, batch=10, revisit=1, force=True)
    assert idle is not None and [(b.first, b.last, b.active) for b in idle.new] == [(31, 36, 0)]
    waiting = index([Block(0, 1, 10, 0, "d", "s", (), 10, 0), block(1, 11, 20, 1)], 20)
    first = plan_update(waiting, active, 20, number=1, batch=100, revisit=0)
    assert first is not None and first.revisit == (0,)  # blocks without sums come first


def test_fusions_free_the_budget_with_the_smallest_neighbours() -> None:
    blocks = (block(0, 1, 10, 1, rows=50), block(1, 11, 20, 1, rows=5), block(2, 21, 30, 1, 6),
              block(3, 31, 40, 1, rows=40))  # fmt: skip
    assert fusions(blocks, 0, budget_gb=1.0) == ()
    assert fusions(blocks, 0, budget_gb=350e-9) == ((1, 2),)
    assert fusions(blocks, 0, budget_gb=250e-9) == ((1, 2), (1, 3))  # 11 + 40 < 50 + 11


def test_the_history_keeps_the_newest_updates_and_the_newest_with_a_star() -> None:
    assert cycles_to_forget(range(1, 11), [2, 5, 8], keep=3) == [1, 3, 4, 6, 7]
    assert cycles_to_forget([4, 5], [], keep=3) == []
    with pytest.raises(ValueError):
        cycles_to_forget([1], [], keep=0)


def test_misfits_score_far_below_their_class_median() -> None:
    stats = ClassStats.empty(2)
    old = empty_rows(60)
    old["best_class"] = [1] * 40 + [2] * 20
    # class 1: its own view around 38 ± 3, and a minority of a foreign view around 25
    rng = np.random.default_rng(1)
    old["score"] = np.r_[rng.normal(38, 3, 32), rng.normal(25, 1, 8), rng.normal(15, 2, 20)]
    old["score"] = np.round(old["score"], 2)
    stats.add(old)
    median, spread = stats.median_spread(1)
    assert median == pytest.approx(np.median(old["score"][:40]))
    assert 2.0 < spread < 6.0
    new = empty_rows(4)
    new["best_class"] = [1, 1, 2, 2]
    new["score"] = [25.0, 35.0, 5.0, 15.0]
    assert MISFIT_SPREADS == 2.5
    assert misfits(new, stats).tolist() == [True, False, True, False]


def test_free_slots_take_empty_slots_then_the_smaller_of_two_copies() -> None:
    rng = np.random.default_rng(2)
    y, x = np.indices((32, 32))
    averages = np.zeros((4, 32, 32), np.float32)
    for k in range(3):
        for _ in range(4):
            cx, cy = rng.uniform(10, 22, 2)
            averages[k] += np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / 8.0).astype(np.float32)
    averages[2] = np.roll(averages[0], 1, axis=1)  # a shifted copy of class 1
    counts = np.array([100.0, 80.0, 30.0, 0.0])
    assert free_slots(averages, counts, 4.0, 16.0, 1) == [(3, False)]
    assert free_slots(averages, counts, 4.0, 16.0, 2) == [(3, False), (2, True)]
