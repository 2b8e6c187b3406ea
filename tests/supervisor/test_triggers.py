"""Trigger rules and retry back-off (pure functions)."""

from __future__ import annotations

from live2d_tui.config import JobSettings
from live2d_tui.events import BlockType
from live2d_tui.supervisor.state import CycleRecord
from live2d_tui.supervisor.triggers import MAX_RETRY_SECONDS, check_trigger, retry_delay

SETTINGS = JobSettings(particle_count_initial=1000, particle_count_update=500)


def _last(input_rows: int, generation: int = 0) -> CycleRecord:
    return CycleRecord(
        name="cycle_3",
        number=3,
        block_type=BlockType.STARTUP,
        cycle_number_in_block=3,
        high_res_limit=8.0,
        particle_count=input_rows,
        process_count=2,
        generation=generation,
        input_rows=input_rows,
    )


def test_first_job_needs_initial_active_particles() -> None:
    assert not check_trigger(
        SETTINGS, active=999, stack_rows=5000, generation=0, last_cycle=None
    ).ready
    check = check_trigger(SETTINGS, active=1000, stack_rows=1000, generation=0, last_cycle=None)
    assert check.ready and check.first_job and check.threshold == 1000
    assert "1,000" in check.text


def test_next_job_counts_rows_appended_after_last_input() -> None:
    last = _last(input_rows=3000)
    not_yet = check_trigger(SETTINGS, active=3400, stack_rows=3499, generation=0, last_cycle=last)
    assert not not_yet.ready and not_yet.particles_new == 499
    ready = check_trigger(SETTINGS, active=3400, stack_rows=3500, generation=0, last_cycle=last)
    assert ready.ready and not ready.first_job and ready.particles_new == 500


def test_new_generation_is_a_first_job_again() -> None:
    last = _last(input_rows=3000, generation=0)
    check = check_trigger(SETTINGS, active=200, stack_rows=200, generation=1, last_cycle=last)
    assert check.first_job and not check.ready


def test_retry_delay_doubles_and_is_capped() -> None:
    assert [retry_delay(a, 30.0) for a in (1, 2, 3)] == [30.0, 60.0, 120.0]
    assert retry_delay(30, 30.0) == MAX_RETRY_SECONDS


def test_streaming_updates_wait_for_a_batch_and_never_overlap() -> None:
    from live2d_tui.supervisor.triggers import check_stream_trigger

    assert not check_stream_trigger(batch=500, waiting=499, updating=False).ready
    ready = check_stream_trigger(batch=500, waiting=500, updating=False)
    assert ready.ready and "500" in ready.text
    busy = check_stream_trigger(batch=500, waiting=5000, updating=True)
    assert not busy.ready and "running" in busy.text


def test_a_staged_streaming_job_starts_once_classes_exist() -> None:
    streaming = SETTINGS.with_changes(classification_type="streaming")
    check = check_trigger(
        streaming, active=10, stack_rows=3001, generation=0, last_cycle=_last(3000)
    )
    assert check.ready and not check.first_job
    first = check_trigger(streaming, active=10, stack_rows=10, generation=0, last_cycle=None)
    assert first.first_job and not first.ready


def test_fewer_than_a_batch_are_taken_once_no_particle_arrived_for_a_while() -> None:
    from live2d_tui.supervisor.triggers import STREAM_IDLE_SECONDS, check_stream_trigger

    recent = check_stream_trigger(batch=500, waiting=120, updating=False, idle_seconds=10)
    assert not recent.ready
    quiet = check_stream_trigger(
        batch=500, waiting=120, updating=False, idle_seconds=STREAM_IDLE_SECONDS
    )
    assert quiet.ready and quiet.particles_new < quiet.threshold and "120 waiting" in quiet.text
    assert not check_stream_trigger(
        batch=500, waiting=0, updating=False, idle_seconds=10 * STREAM_IDLE_SECONDS
    ).ready
    assert not check_stream_trigger(
        batch=500, waiting=120, updating=True, idle_seconds=10 * STREAM_IDLE_SECONDS
    ).ready
