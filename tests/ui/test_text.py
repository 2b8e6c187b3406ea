"""Wording and small pure pieces: cycle lines, captions, labels, job bar rules, progress."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from live2d_tui.events import (
    BlockType,
    CycleProgress,
    CycleStage,
    CycleStarted,
    IngestCounts,
    SessionStatus,
    job_position,
    ordinal,
)
from live2d_tui.supervisor import CycleRecord
from live2d_tui.ui import text
from live2d_tui.ui.widgets.class_grid import compact_count, label_row
from live2d_tui.ui.widgets.grid_page import GridData
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


SEED = replace(
    RECORD,
    name="cycle_0",
    number=0,
    block_type=BlockType.RANDOM_SEED,
    particle_count_per_class=(31207, 0, 0, 0),
    fraction_used=0.91,
)


def test_cycle_lines() -> None:
    assert text.cycle_choice(RECORD) == (
        "cycle 7 · startup · 31,207 particles · 12.3 Å · 2026-11-26 09:12"
    )
    meta = text.cycle_metadata(RECORD, latest=False, newer=2)
    assert meta.startswith("Cycle 7 · 2 newer (press f to follow) · startup")
    assert "50% of particles used" in meta
    assert text.cycle_metadata(RECORD, latest=True).startswith("Cycle 7 · latest · startup")


def test_the_random_start_is_named_and_its_counts_explained() -> None:
    # not "random_seed", not every class "0" beside "91% used"
    assert text.cycle_choice(SEED).startswith("cycle 0 · random start · ")
    meta = text.cycle_metadata(SEED, latest=True)
    assert meta.startswith("Cycle 0 · latest · random start: each class averages a random subset")
    assert "join classes from the next cycle" in meta and "used" not in meta
    caption = text.class_caption(SEED, 1, text.members_per_slice(SEED, 3))
    assert "random start" in caption and "members" not in caption
    assert label_row([0, 1], None, 10, selected=None).plain == "#1        #2        "
    counts = text.members_per_slice(SEED, 3)
    stack = np.random.default_rng(0).normal(size=(3, 8, 8)).astype(np.float32)
    assert GridData.from_stack(0, stack, counts, members_known=False).empty == frozenset()
    assert GridData.from_stack(0, stack, counts).empty == {0, 1, 2}


def test_the_job_position_is_worded_apart_from_the_session_cycle() -> None:
    assert [ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 101, 111)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "101st", "111th",
    ]  # fmt: skip
    assert job_position(5, 6) == "5th of 6 cycles in this job"
    assert BlockType.RANDOM_SEED.label == "random start"


def test_counts_and_caption() -> None:
    counts = text.members_per_slice(RECORD, 4)
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
    assert line.startswith("Cycle 7 (startup, 3rd of 21 cycles in this job)")
    assert "classifying" in line and "runs 3/8" in line and "ETA 4m 05s" in line
    assert progress_text(None, None) == "No cycle running."


def test_the_session_log_words_the_random_start() -> None:
    from live2d_tui.supervisor.jobrunner import _cycle_summary

    seed = _cycle_summary(SEED)
    assert "(random start)" in seed and "3 starting classes" in seed
    assert "populated" not in seed and "used" not in seed
    startup = _cycle_summary(RECORD)
    assert "2 of 3 classes populated" in startup and "50% of the particles used" in startup


def test_empty_classes_are_explained() -> None:
    assert text.empty_classes_note(0, 8) == ""
    note = text.empty_classes_note(3, 8)
    assert note == "3 of 8 classes empty (crossed): no particle fits them best"


def test_the_demo_has_as_many_views_as_classes() -> None:
    from live2d_tui.commands.demo import DEMO_JOB, DEMO_VIEWS

    assert DEMO_JOB["class_number"] == DEMO_VIEWS
