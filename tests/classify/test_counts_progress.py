"""Class counts (members vs used) and progress parsing/aggregation."""

from __future__ import annotations

import pytest

from live2d_tui.classify.counts import class_counts
from live2d_tui.classify.progress import CycleProgressTracker, LineSplitter, RunProgress
from live2d_tui.events import CycleStage


def test_members_count_negative_classes_used_does_not() -> None:
    counts = class_counts([1, -1, 2, 0, -3, 3, 3, 0], 3)
    assert counts.members == [2, 2, 1, 3]
    assert counts.used == [2, 1, 1, 2]
    assert counts.particle_count == 8


def test_counts_reject_a_class_beyond_k() -> None:
    with pytest.raises(ValueError, match="class 5"):
        class_counts([1, -5], 4)


def test_empty_classes_are_listed() -> None:
    assert class_counts([], 2).members == [0, 0, 0]


def test_splitter_handles_carriage_returns_and_chunks() -> None:
    splitter = LineSplitter()
    pieces = list(splitter.feed("Calculating noise power spectrum...\n    10% [===   "))
    assert pieces == ["Calculating noise power spectrum..."]
    pieces = list(splitter.feed("     ] 0h:00m01s  \r   50% [====="))
    assert pieces == ["    10% [===        ] 0h:00m01s  "]
    assert list(splitter.flush()) == ["   50% [====="]


def test_job_progress_stages_and_bars() -> None:
    job = RunProgress(rows=10)
    assert job.update("Calculating noise power spectrum...")
    assert job.stage is CycleStage.NOISE
    assert job.update("    50% [===============               ] 0h:00m01s")
    assert job.fraction == pytest.approx(0.1)
    job.update("Calculating new class averages...")
    assert job.stage is CycleStage.CLASSIFYING and job.fraction == pytest.approx(0.2)
    job.update("    50% [===============               ] 0h:00m01s")
    assert job.fraction == pytest.approx(0.6)
    assert not job.update("Total logP = -5")


def test_cycle_progress_is_weighted_by_rows() -> None:
    tracker = CycleProgressTracker.for_rows([30, 10], CycleStage.NOISE)
    assert tracker.stage is CycleStage.NOISE
    tracker.runs[1].finish()
    assert tracker.percent == pytest.approx(25.0)
    assert tracker.runs_done == 1
    tracker.runs[0].update("Generating 5 starting class averages...")
    tracker.runs[0].update("    40% [====")
    assert tracker.percent == pytest.approx(100 * (30 * 0.4 + 10) / 40)
    assert tracker.stage is CycleStage.SEEDING
    assert tracker.eta_seconds(10.0) == pytest.approx(10.0 * (100 - 55) / 55)


def test_finished_cycle_reports_its_last_stage() -> None:
    tracker = CycleProgressTracker.for_rows([5, 5], CycleStage.NOISE)
    for job in tracker.runs:
        job.update("Calculating new class averages...")
        job.finish()
    assert tracker.stage is CycleStage.CLASSIFYING and tracker.percent == 100.0
