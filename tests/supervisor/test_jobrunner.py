"""The job runner alone: a session store, a dataset in memory and a scripted cycle runner.

Covers its invariants: never two jobs; a cycle's record is saved (with the job's next cycle)
before ``CycleFinished``; stop ends after the running cycle; abort removes the cycle's partial
output and keeps earlier cycles; a closed (or crashed) job continues at its next cycle; failed
automatic jobs are retried after a back-off, and after three failures automatic jobs stop.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from live2d_tui.config import ClassificationType
from live2d_tui.events import (
    CycleFinished,
    CycleStarted,
    ErrorRaised,
    Event,
    JobFinished,
    SessionStatus,
)
from live2d_tui.supervisor import SupervisorError
from live2d_tui.supervisor.state import load_state
from live2d_tui.supervisor.triggers import MAX_CONSECUTIVE_FAILURES, retry_delay

from .conftest import tiny_config
from .fakes import (
    ScriptedRunner,
    fake_dataset,
    job_at_hold,
    job_parts,
    make_session,
    scripted_runner,
)


async def test_a_job_runs_its_cycles_and_saves_each_before_announcing_it(tmp_path: Path) -> None:
    out = tmp_path / "out"
    session = make_session(out)
    parts = await job_parts(session)
    on_disk: list[tuple[int, list[int], int | None]] = []

    def check_disk(event: Event) -> None:
        if isinstance(event, CycleFinished) and event.success:
            loaded = load_state(out)
            assert loaded is not None
            job = loaded.state.job
            saved = [c.number for c in loaded.state.cycles]
            on_disk.append((event.number, saved, job.next_cycle_number if job else None))

    parts.store.ctx.bus.subscribe(check_disk)
    parts.jobs.launch_new(automatic=False, generation=0)
    assert parts.jobs.running
    await parts.jobs.wait()

    assert on_disk == [(0, [0], 1), (1, [0, 1], 2), (2, [0, 1, 2], 3), (3, [0, 1, 2, 3], 4)]
    assert [e.index_in_job for e in parts.events.of(CycleStarted)] == [1, 2, 3, 4]
    finished = parts.events.of(JobFinished)
    assert [(e.success, e.message) for e in finished] == [(True, "Ab Initio job finished")]
    state = session.state
    assert state.job is None and state.consecutive_failures == 0
    assert state.settings.classification_type is ClassificationType.SEEDED  # ab initio done
    assert parts.store.status is SessionStatus.STOPPED
    assert len(parts.started.times) == 1 and len(parts.ready.times) == 1
    inputs = [i for _, i in scripted_runner(session).calls]
    assert inputs[0].previous_star is None  # the seed starts from nothing
    assert [i.previous_star for i in inputs[1:]] == [out / f"cycle_{n}.star" for n in (0, 1, 2)]
    assert parts.jobs.job is None and not parts.jobs.running


async def test_never_two_jobs(tmp_path: Path) -> None:
    session = make_session(tmp_path / "out", runner=ScriptedRunner(tmp_path / "out", ["hold"]))
    parts = await job_parts(session)
    parts.jobs.launch_new(automatic=False, generation=0)
    await scripted_runner(session).holding.wait()
    job = session.state.job
    assert job is not None and parts.jobs.job == job
    with pytest.raises(SupervisorError, match="a job is already running"):
        parts.jobs.launch(job)
    with pytest.raises(SupervisorError, match="a job is already running"):
        parts.jobs.launch_new(automatic=False, generation=0)
    scripted_runner(session).release()
    await parts.jobs.wait()
    assert len(parts.events.of(JobFinished)) == 1
    assert [c.number for c in session.state.cycles] == [0, 1, 2, 3]


async def test_stop_ends_the_job_after_the_running_cycle(tmp_path: Path) -> None:
    out = tmp_path / "out"
    session, parts = await job_at_hold(out, ["ok", "hold"])
    parts.jobs.request_stop()
    scripted_runner(session).release()
    await parts.jobs.wait()

    assert [c.number for c in session.state.cycles] == [0, 1]  # cycle 1 finished, no cycle 2
    assert len(scripted_runner(session).calls) == 2
    finished = parts.events.of(JobFinished)
    assert [(e.success, e.message) for e in finished] == [(True, "stopped by the user")]
    assert parts.store.status is SessionStatus.STOPPED and not session.state.automatic
    loaded = load_state(out)
    assert loaded is not None and loaded.state.job is None and not loaded.state.automatic


async def test_abort_removes_the_partial_cycle_and_keeps_earlier_ones(tmp_path: Path) -> None:
    out = tmp_path / "out"
    _, parts = await job_at_hold(out, ["ok", "hold"])
    assert (out / "cycle_1.mrc").exists()  # the running cycle's partial output
    await parts.jobs.abort()

    assert not parts.jobs.running
    assert not (out / "cycle_1.mrc").exists()
    assert (out / "cycle_0.mrc").exists() and (out / "cycle_0.star").exists()
    assert [(e.number, e.success, e.message) for e in parts.events.of(CycleFinished)] == [
        (0, True, ""),
        (1, False, "aborted"),
    ]
    assert [(e.success, e.message) for e in parts.events.of(JobFinished)] == [(False, "aborted")]
    assert parts.store.status is SessionStatus.STOPPED
    loaded = load_state(out)
    assert loaded is not None
    assert [c.number for c in loaded.state.cycles] == [0]
    assert loaded.state.job is None and not loaded.state.automatic


async def test_a_closed_job_continues_at_its_next_cycle(tmp_path: Path) -> None:
    """Closing (like a crash) ends the running cycle and leaves the job on disk; a new runner on
    the reloaded state runs the remaining cycles only."""
    out = tmp_path / "out"
    _, parts = await job_at_hold(out, ["ok", "hold"])
    await parts.jobs.close(abort_running=False)

    assert parts.jobs.closing and not parts.jobs.running
    assert parts.events.of(JobFinished) == []  # the job did not end: it was interrupted
    assert parts.store.status is SessionStatus.RUNNING  # saved as it was
    assert not (out / "cycle_1.mrc").exists()
    await parts.store.close()
    loaded = load_state(out)
    assert loaded is not None and loaded.state.job is not None
    assert loaded.state.job.next_cycle_number == 1 and loaded.state.job.cycles_done == 1

    again = make_session(out)
    again.state = loaded.state
    parts2 = await job_parts(again)
    parts2.jobs.launch(loaded.state.job)
    await parts2.jobs.wait()
    assert [p.number for p, _ in scripted_runner(again).calls] == [1, 2, 3]
    assert [e.index_in_job for e in parts2.events.of(CycleStarted)] == [2, 3, 4]
    assert [c.number for c in again.state.cycles] == [0, 1, 2, 3]
    assert again.state.job is None


async def test_failed_automatic_jobs_are_retried_after_a_back_off_then_stop(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    runner = ScriptedRunner(out, ["fail"] * MAX_CONSECUTIVE_FAILURES)
    session = make_session(out, runner=runner, automatic=True)
    config = tiny_config(retry_seconds=0.2)
    parts = await job_parts(session, config)
    loop = asyncio.get_running_loop()

    parts.jobs.launch_new(automatic=True, generation=0)
    for attempt in range(1, MAX_CONSECUTIVE_FAILURES):
        before = loop.time()
        await parts.jobs.wait()
        retry_at = parts.jobs.retry_at
        assert retry_at is not None
        delay = retry_delay(attempt, 0.2)
        assert before + delay <= retry_at <= loop.time() + delay
        assert parts.store.status is SessionStatus.WAITING
        job = session.state.job
        assert job is not None and job.attempts == attempt
        assert session.state.consecutive_failures == attempt
        await parts.ready.next()
        assert parts.ready.times[-1] >= retry_at  # not before the back-off ran out
        parts.jobs.launch(job)  # as the trigger loop does when the retry is due
    await parts.jobs.wait()

    assert parts.store.status is SessionStatus.FAILED
    state = session.state
    assert state.job is None and not state.automatic
    assert (
        "refine2d of cycle 0 failed" in state.last_error and "Error: scripted" in state.last_error
    )
    assert len(runner.calls) == MAX_CONSECUTIVE_FAILURES
    failures = [e for e in parts.events.of(ErrorRaised) if e.message.startswith("Job failed")]
    assert len(failures) == MAX_CONSECUTIVE_FAILURES
    assert [e.success for e in parts.events.of(JobFinished)] == [
        False
    ]  # announced once, at the end
    assert [e.success for e in parts.events.of(CycleFinished)] == [False] * MAX_CONSECUTIVE_FAILURES


async def test_a_failed_job_started_by_hand_is_not_retried(tmp_path: Path) -> None:
    out = tmp_path / "out"
    session = make_session(out, runner=ScriptedRunner(out, ["fail"]))
    parts = await job_parts(session)
    parts.jobs.launch_new(automatic=False, generation=0)
    await parts.jobs.wait()
    assert parts.jobs.retry_at is None and session.state.job is None
    assert parts.store.status is SessionStatus.STOPPED
    assert [(e.success, e.message) for e in parts.events.of(JobFinished)] == [
        (False, session.state.last_error)
    ]


async def test_a_new_stack_generation_ends_the_job_and_the_next_is_ab_initio(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    session, parts = await job_at_hold(out, ["hold"])
    fake_dataset(session).generation = 1  # a new stack while cycle 0 runs
    scripted_runner(session).release()
    await parts.jobs.wait()

    assert len(scripted_runner(session).calls) == 1  # cycle 1 never ran on the new stack
    assert [(e.success, e.message) for e in parts.events.of(JobFinished)] == [
        (False, "new stack generation")
    ]
    state = session.state
    assert state.force_abinit and state.job is None
    assert state.consecutive_failures == 0  # not a failure
    assert parts.store.status is SessionStatus.WAITING  # automatic jobs go on
    assert len(parts.ready.times) == 1

    parts.jobs.launch_new(automatic=True, generation=1)
    job = session.state.job
    assert job is not None and job.force_abinit and job.kind is ClassificationType.ABINIT
    await parts.jobs.wait()
