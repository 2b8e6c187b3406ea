"""Wording and small pure pieces: cycle lines, captions, labels, job bar rules, progress."""

from __future__ import annotations

from live2d_tui.events import (
    BlockType,
    CycleProgress,
    CycleStage,
    CycleStarted,
    IngestCounts,
    SessionStatus,
)
from live2d_tui.supervisor import CycleRecord
from live2d_tui.ui import text
from live2d_tui.ui.widgets.class_grid import compact_count, label_row
from live2d_tui.ui.widgets.job_bar import enabled_buttons
from live2d_tui.ui.widgets.job_output import format_eta, progress_text

RECORD = CycleRecord(
    name="cycle_7",
    number=7,
    block_type=BlockType.STARTUP,
    cycle_number_in_block=3,
    high_res_limit=12.345,
    particle_count=31207,
    process_count=4,
    particle_count_per_class=(5, 10, 0, 30),
    fraction_used=0.5,
    time="2026-11-26T09:12:33+00:00",
)


def test_cycle_lines() -> None:
    assert text.cycle_choice(RECORD) == (
        "cycle 7 · startup · 31,207 particles · 12.3 Å · 2026-11-26 09:12"
    )
    meta = text.cycle_metadata(RECORD, latest=False, newer=2)
    assert "Cycle 7" in meta and "50% used" in meta and "2 newer" in meta
    assert text.cycle_metadata(RECORD, latest=True).endswith("latest")


def test_counts_and_caption() -> None:
    counts = text.class_counts(RECORD, 4)
    assert counts == [10, 0, 30, 0]  # index 0 (unassigned) dropped, missing classes count 0
    caption = text.class_caption(RECORD, 2, counts)
    assert "class 3 of 4" in caption and "30 members" in caption and "75.0% of 40" in caption


def test_waiting_message_says_what_and_when() -> None:
    ingest = IngestCounts(3, 3, 0, 0, 31207, 31207, 31207, 50000)
    waiting = text.waiting_message(SessionStatus.WAITING, ingest, 50000, "")
    assert "First job at 50,000 particles — 31,207 so far." in waiting
    stopped = text.waiting_message(SessionStatus.STOPPED, ingest, 50000, "")
    assert "automatic" in stopped and "g starts a job now" in stopped
    running = text.waiting_message(SessionStatus.RUNNING, None, 50000, "")
    assert "running" in running


def test_labels() -> None:
    assert compact_count(987) == "987"
    assert compact_count(12345) == "12.3k"
    assert compact_count(2_500_000) == "2.5M"
    row = label_row([0, 1], [3412, 0], 10, selected=0)
    assert row.plain == "#1 3,412  #2 0      "
    assert [(s.start, s.end, str(s.style)) for s in row.spans] == [
        (0, 9, "reverse bold"),
        (10, 19, "dim"),  # an empty class is dimmed
    ]


def test_job_bar_rules() -> None:
    assert enabled_buttons(SessionStatus.STOPPED) == {"start-now", "start-auto"}
    assert enabled_buttons(SessionStatus.RUNNING) == {"stop", "abort"}
    assert enabled_buttons(SessionStatus.STOPPING) == {"abort"}
    assert enabled_buttons(SessionStatus.WAITING) == {"start-now", "stop"}


def test_progress_text() -> None:
    assert format_eta(None) == ""
    assert format_eta(245) == "ETA 4m 05s"
    assert format_eta(3720) == "ETA 1h 02m"
    started = CycleStarted(7, BlockType.STARTUP, 3, 21, 12.3, 31207)
    progress = CycleProgress(7, CycleStage.CLASSIFYING, 42.0, 3, 8, 245.0)
    line = progress_text(started, progress)
    assert line.startswith("cycle 3 of 21")
    assert "classifying" in line and "jobs 3/8" in line and "ETA 4m 05s" in line
    assert progress_text(None, None) == "No cycle running."
