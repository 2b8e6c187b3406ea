"""The ingest loop and the trigger loop alone: a session store, a dataset in memory and, for the
triggers, a job runner with a scripted cycle runner.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from live2d_tui.dataset.ingest import IngestError
from live2d_tui.dataset.report import IngestReport
from live2d_tui.events import ErrorRaised, Event, IngestCounts, LogLine, SessionStatus
from live2d_tui.supervisor.jobrunner import JobRunner
from live2d_tui.supervisor.loops import IngestLoop, TriggerLoop
from live2d_tui.supervisor.state import load_state
from live2d_tui.supervisor.store import SessionStore

from .conftest import Recorder, tiny_config
from .fakes import Calls, ScriptedRunner, fake_dataset, make_session, open_store


async def _until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.02)

    await asyncio.wait_for(poll(), timeout)


def _report(active: int, appended: int = 0, **changes: object) -> IngestReport:
    return IngestReport(
        micrographs_seen=3,
        micrographs_ingested=3,
        particles_active=active,
        particles_total=active,
        particles_appended=appended,
        **changes,  # type: ignore[arg-type]
    )


# --- the ingest loop ----------------------------------------------------------------------------


async def _ingest(tmp_path: Path) -> tuple[SessionStore, IngestLoop, Calls, Recorder]:
    store = await open_store(make_session(tmp_path / "out"))
    passes = Calls()
    return store, IngestLoop(store.ctx, store, after_pass=passes), passes, Recorder(store.ctx.bus)


async def test_a_pass_logs_new_particles_and_hands_over(tmp_path: Path) -> None:
    store, ingest, passes, recorder = await _ingest(tmp_path)
    dataset = fake_dataset(store.session)
    dataset.generation = 2
    report = _report(120, appended=120)
    dataset.polls = [report, _report(120)]
    assert await ingest.ingest_once() is report
    assert ingest.report is report and ingest.generation == 2
    assert len(passes.times) == 1
    lines = [e.text for e in recorder.of(LogLine)]
    assert lines == [
        "Ingested 120 new particles: 120 active of 120 in the stack, from 3 micrograph(s)"
    ]
    await ingest.ingest_once()  # nothing new: no line
    assert len(recorder.of(LogLine)) == 1 and len(passes.times) == 2


async def test_a_new_generation_is_saved_before_it_is_announced(tmp_path: Path) -> None:
    store, ingest, _, _ = await _ingest(tmp_path)
    out = store.session.output_folder
    dataset = fake_dataset(store.session)
    dataset.generation = 1
    dataset.abinitio_flag = True
    on_disk: list[bool] = []

    def check_disk(event: Event) -> None:
        if isinstance(event, LogLine) and event.text.startswith("Stack generation 1 started"):
            loaded = load_state(out)
            assert loaded is not None
            on_disk.append(loaded.state.force_abinit)

    store.ctx.bus.subscribe(check_disk)
    await ingest.ingest_once()
    assert on_disk == [True] and store.session.state.force_abinit
    assert not dataset.abinitio_flag  # consumed
    dataset.polls = [_report(10, new_generation=True)]
    await ingest.ingest_once()
    assert on_disk == [True, True]


async def test_a_requested_reimport_is_done_once_particles_arrive(tmp_path: Path) -> None:
    store, ingest, _, _ = await _ingest(tmp_path)
    session = store.session
    session.state = replace(session.state, next_run_new_particles=True)
    fake_dataset(session).polls = [_report(0), _report(50, appended=50)]
    await ingest.ingest_once()
    assert session.state.next_run_new_particles  # nothing arrived yet
    await ingest.ingest_once()
    assert not session.state.next_run_new_particles
    loaded = load_state(session.output_folder)
    assert loaded is not None and not loaded.state.next_run_new_particles


async def test_a_failing_pass_is_reported_once_and_the_loop_goes_on(tmp_path: Path) -> None:
    store, ingest, passes, recorder = await _ingest(tmp_path)
    fake_dataset(store.session).polls = [
        IngestError("Warp's star is damaged"),
        IngestError("Warp's star is damaged"),
        _report(10),
        IngestError("Warp's star is damaged"),
        OSError(5, "Input/output error"),
    ]
    results = [await ingest.ingest_once() for _ in range(5)]
    assert [r is not None for r in results] == [False, False, True, False, False]
    errors = [e.message for e in recorder.of(ErrorRaised)]
    assert errors[:2] == ["Ingest failed: Warp's star is damaged"] * 2  # again after a good pass
    assert len(errors) == 3 and errors[2].startswith("Ingest failed: OSError: [Errno 5]")
    assert errors[2].endswith("retrying at the next look")
    assert len(passes.times) == 1  # only the good pass is handed over


async def test_a_pass_over_a_session_being_replaced_is_dropped(tmp_path: Path) -> None:
    store, ingest, passes, _ = await _ingest(tmp_path)
    old = store.session
    polling, go_on = threading.Event(), threading.Event()

    def wait_for_the_swap() -> None:
        polling.set()
        go_on.wait(10)

    fake_dataset(old).before_poll = wait_for_the_swap
    fake_dataset(old).polls = [_report(10, appended=10)]
    pass_task = asyncio.create_task(ingest.ingest_once())
    await asyncio.to_thread(polling.wait, 10)
    new = make_session(tmp_path / "other")
    swap = asyncio.create_task(store.switch_to(new))
    await _until(lambda: store.current is new)
    go_on.set()
    assert await pass_task is None
    await swap  # closing the old dataset waited for the pass
    assert fake_dataset(old).closed
    assert ingest.report is None and passes.times == []


async def test_wake_looks_at_once(tmp_path: Path) -> None:
    store = await open_store(make_session(tmp_path / "out"), tiny_config(interval=60.0))
    passes = Calls()
    ingest = IngestLoop(store.ctx, store, after_pass=passes)
    loop_task = asyncio.create_task(ingest.run())
    try:
        await passes.next()  # the first look is at once
        ingest.wake()
        await passes.next(timeout=10)  # long before the 60 s interval
        assert len(passes.times) == 2
    finally:
        loop_task.cancel()


# --- the trigger loop ---------------------------------------------------------------------------


class _Triggers:
    """A trigger loop wired as the supervisor wires it."""

    def __init__(self, store: SessionStore) -> None:
        self.store = store
        self.jobs = JobRunner(
            store.ctx,
            store,
            on_start=lambda: self.triggers.job_started(),
            on_ready=lambda: self.triggers.wake(),
        )
        self.ingest = IngestLoop(store.ctx, store, after_pass=lambda: self.triggers.after_ingest())
        self.triggers = TriggerLoop(store.ctx, store, self.ingest, self.jobs)
        self.recorder = Recorder(store.ctx.bus)

    async def look(self, report: IngestReport) -> None:
        fake_dataset(self.store.session).polls = [report]
        await self.ingest.ingest_once()


async def test_counts_are_published_when_they_change(tmp_path: Path) -> None:
    store = await open_store(make_session(tmp_path / "out"))
    parts = _Triggers(store)
    await parts.look(_report(40, appended=40))
    await parts.look(_report(40))
    await parts.look(_report(70, appended=30))
    counts = parts.recorder.of(IngestCounts)
    assert [(c.particles_active, c.particles_new, c.next_threshold) for c in counts] == [
        (40, 40, 100),
        (70, 70, 100),
    ]
    assert parts.triggers.counts == counts[-1]
    assert parts.triggers.next_trigger == (
        "Automatic jobs off. First job at 100 active particles (70 now)"
    )
    await parts.triggers.check()
    assert not parts.jobs.running  # automatic jobs are off


async def test_an_automatic_job_starts_when_enough_particles_arrived(tmp_path: Path) -> None:
    out = tmp_path / "out"
    store = await open_store(make_session(out, automatic=True))
    parts = _Triggers(store)
    await parts.look(_report(60, appended=60))
    await parts.triggers.check()
    assert not parts.jobs.running
    assert parts.triggers.next_trigger == "First job at 100 active particles (60 now)"

    await parts.look(_report(150, appended=90))
    await parts.triggers.check()
    assert parts.jobs.running
    lines = [e.text for e in parts.recorder.of(LogLine)]
    assert "Starting an automatic job: 150 particles ≥ 100" in lines
    await parts.jobs.wait()
    assert parts.triggers.next_trigger == "A job is running"  # until the next look
    assert store.status is SessionStatus.WAITING
    await parts.look(_report(150))
    assert parts.triggers.next_trigger == "Next job after 60 new particles (0 so far)"


async def test_a_failed_job_is_retried_only_when_its_back_off_ran_out(tmp_path: Path) -> None:
    out = tmp_path / "out"
    runner = ScriptedRunner(out, ["fail"])
    session = make_session(out, runner=runner, automatic=True)
    store = await open_store(session, tiny_config(retry_seconds=2.0))
    parts = _Triggers(store)
    await parts.look(_report(150, appended=150))
    await parts.triggers.check()
    await parts.jobs.wait()
    assert store.status is SessionStatus.WAITING and store.session.state.job is not None

    await parts.triggers.check()  # at once: the back-off has not run out
    assert not parts.jobs.running and len(runner.calls) == 1
    assert parts.triggers.next_trigger == "Retrying the job in 2 s (attempt 2 of 3)"

    loop_task = asyncio.create_task(parts.triggers.run())  # woken when the back-off ran out
    try:
        await _until(lambda: len(runner.calls) > 1)
        await parts.jobs.wait()
    finally:
        loop_task.cancel()
    assert len(runner.calls) == 5  # the retried job ran all its cycles
    assert store.session.state.consecutive_failures == 0


async def test_no_job_starts_once_closing(tmp_path: Path) -> None:
    store = await open_store(make_session(tmp_path / "out", automatic=True))
    parts = _Triggers(store)
    await parts.look(_report(150, appended=150))
    await parts.jobs.close(abort_running=False)
    await parts.triggers.check()
    assert not parts.jobs.running
    assert not [e for e in parts.recorder.of(LogLine) if e.text.startswith("Starting")]
