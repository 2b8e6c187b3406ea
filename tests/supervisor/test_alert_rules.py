"""The alert rules alone (live2d_tui/supervisor/alerts.py): once until ended, and their lines."""

from __future__ import annotations

import pytest

from live2d_tui.events import AlertKind, AlertLevel, BlockType, JobEnd, JobFinished
from live2d_tui.supervisor import alerts
from live2d_tui.supervisor.alerts import (
    AlertBook,
    DiskWatch,
    Flow,
    RunningCycle,
    Sighting,
    StallWatch,
    job_alert,
    running_verdict,
    slow_verdict,
)
from live2d_tui.supervisor.state import CycleRecord


def test_an_alert_fires_once_until_it_ends() -> None:
    book = AlertBook()
    first = book.raise_(AlertKind.DISK_LOW, AlertLevel.WARNING, "disk")
    assert first is not None and first.alert.text == "disk"
    assert book.raise_(AlertKind.DISK_LOW, AlertLevel.WARNING, "disk again") is None
    ended = book.clear(AlertKind.DISK_LOW, "room again", notify=True)
    assert ended is not None and ended.alert == first.alert and ended.notify
    assert book.clear(AlertKind.DISK_LOW, "room again", notify=True) is None
    assert book.raise_(AlertKind.DISK_LOW, AlertLevel.WARNING, "disk") is not None


def sighting(
    new: list[str], kept: set[str], latest: str = "m9", rejected: set[str] | None = None
) -> Sighting:
    return Sighting(
        new=new,
        kept=frozenset(kept),
        rejected=frozenset(rejected or set()),
        latest=(latest, 1_700_000_000.0),
    )


def test_stall_and_rejection_are_told_apart() -> None:
    watch = StallWatch()
    assert watch.judge(0.0, 0.0, 60.0) is Flow.OFF  # nothing seen yet
    watch.observe(0.0, sighting([], {"m1"}), {})
    assert watch.judge(30.0, 0.0, 60.0) is Flow.FLOWING
    assert watch.judge(30.0, None, 60.0) is Flow.OFF  # automatic jobs off
    # movies keep coming, none is kept: undecided ones are no evidence yet
    for t, root in ((20.0, "m2"), (40.0, "m3"), (70.0, "m4")):
        watch.observe(t, sighting([root], {"m1"}, root), {})
    assert watch.judge(70.0, 0.0, 60.0) is Flow.FLOWING
    watch.observe(75.0, sighting(["m5"], {"m1"}, "m5", rejected={"m2", "m3", "m4"}), {})
    assert watch.judge(75.0, 0.0, 60.0) is Flow.REJECTED
    assert "3 movies" in watch.rejected_text(75.0, "goodparticles_X.star")
    watch.observe(80.0, sighting(["m6"], {"m1", "m5"}, "m6", {"m2", "m3", "m4"}), {"m5": 1.7e9})
    assert watch.judge(80.0, 0.0, 60.0) is Flow.FLOWING and watch.last_kept is not None
    # then nothing at all
    assert watch.judge(80.0 + 60.0, 0.0, 60.0) is Flow.STALLED
    assert "no new movie for 60 s" in watch.stalled_text(140.0)
    # turning automatic jobs on later restarts the clock
    assert watch.judge(140.0, 100.0, 60.0) is Flow.FLOWING


def test_disk_rate_and_time_left() -> None:
    watch = DiskWatch()
    watch.sample(0.0, 12_000_000_000)
    assert watch.rate() is None
    watch.sample(60.0, 11_900_000_000)
    assert watch.rate() is None  # under two minutes of samples
    watch.sample(600.0, 11_000_000_000)
    assert watch.rate() == pytest.approx(1e9 / 600)
    text = watch.low_text(11_000_000_000, 20.0, 2.0)
    assert "11.0 GB free" in text and "6.0 GB/h" in text and "1 h 30 min" in text
    watch.sample(5000.0, 11_000_000_000)  # older samples fall out of the hour
    assert len(watch.samples) == 1 and "not filling" in watch.low_text(11e9, 20.0, 2.0)


def record(number: int, cpu: float, *, limit: float = 8.0, classes: int = 10) -> CycleRecord:
    return CycleRecord(
        name=f"cycle_{number}",
        number=number,
        block_type=BlockType.REFINEMENT,
        cycle_number_in_block=1,
        high_res_limit=limit,
        particle_count=10_000,
        process_count=2,
        fraction_used=1.0,
        settings={"class_number": classes},
        cpu_seconds=cpu,
    )


def test_a_slow_cycle_against_the_same_limit_and_classes(monkeypatch: pytest.MonkeyPatch) -> None:
    history = [record(1, 100.0), record(2, 90.0, limit=12.0), record(3, 110.0), record(4, 95.0)]
    slow = record(5, 400.0)
    verdict = slow_verdict(slow, [*history, slow])
    assert verdict is not None and verdict.slow
    assert verdict.reference == pytest.approx(10_000 / 100.0)  # median of cycles 1, 3, 4
    assert "Cycle 5 ran 4.0× slower" in verdict.text and "at 8.0 Å" in verdict.text
    usual = slow_verdict(record(5, 120.0), history)
    assert usual is not None and not usual.slow
    # another number of classes or too few references: nothing to compare
    assert slow_verdict(record(5, 400.0, classes=20), history) is None
    assert slow_verdict(record(5, 400.0), history[:2]) is None
    # a tiny cycle's extra CPU time is start-up noise
    tiny = [record(n, 0.5) for n in range(1, 4)]
    assert not slow_verdict(record(4, 2.0), tiny).slow  # type: ignore[union-attr]
    monkeypatch.setattr(alerts, "SLOW_MIN_EXCESS_SECONDS", 0.0)
    assert slow_verdict(record(4, 2.0), tiny).slow  # type: ignore[union-attr]


def test_a_running_cycle_that_spins_is_noticed() -> None:
    history = [record(1, 100.0), record(2, 100.0)]
    running = RunningCycle(number=3, high_res_limit=8.0, particles=10_000, fraction=1.0, seed=False)
    assert running_verdict(running, 250.0, history) is None  # still within 3×
    verdict = running_verdict(running, 350.0, history)
    assert verdict is not None and "is running much slower" in verdict.text
    seed = RunningCycle(number=3, high_res_limit=8.0, particles=10_000, fraction=1.0, seed=True)
    assert running_verdict(seed, 1e6, history) is None


def test_job_ends() -> None:
    last = record(7, 100.0)
    finished = job_alert(
        JobFinished(True, "x", JobEnd.FINISHED), kind_label="Ab Initio", last=last, failures=0
    )
    assert finished is not None and finished[:2] == (AlertKind.JOB_FINISHED, AlertLevel.INFO)
    assert "Ab Initio job finished after cycle 7 (10,000 particles, 10 classes" in finished[2]
    failed = job_alert(
        JobFinished(False, "refine2d_1 failed twice:\nexit 3", JobEnd.FAILED),
        kind_label="Seeded Startup",
        last=None,
        failures=3,
    )
    assert failed == (
        AlertKind.JOB_FAILED,
        AlertLevel.ERROR,
        "Job failed after 3 attempts: refine2d_1 failed twice: exit 3",
    )
    aborted = job_alert(
        JobFinished(False, "aborted", JobEnd.ABORTED), kind_label="x", last=None, failures=0
    )
    assert aborted is not None and aborted[0] is AlertKind.JOB_STOPPED
    assert (
        job_alert(JobFinished(False, "g", JobEnd.ENDED), kind_label="x", last=None, failures=0)
        is None
    )
    # an older publisher without ``end``: success decides
    assert job_alert(JobFinished(False, "boom"), kind_label="x", last=None, failures=1) == (
        AlertKind.JOB_FAILED, AlertLevel.ERROR, "Job failed: boom",
    )  # fmt: skip
