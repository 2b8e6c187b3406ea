"""State machine of the supervisor on a real (simulated) Warp session and the built-in engine."""

from __future__ import annotations

import asyncio
import json
import stat
from pathlib import Path

import pytest

from live2d_tui.config import ClassificationType
from live2d_tui.events import (
    CycleFinished,
    CycleStarted,
    ErrorRaised,
    JobFinished,
    SessionStatus,
    StatusChanged,
)
from live2d_tui.formats.cistem_star import read_star
from live2d_tui.supervisor import Supervisor, SupervisorError
from live2d_tui.supervisor.state import STATE_NAME, load_state

from .conftest import TINY_JOB, Recorder, engine_processes, tiny_config


def _star_rows(path: Path) -> int:
    return len(read_star(path))


def _check_cycle_files(out: Path) -> None:
    loaded = load_state(out)
    assert loaded is not None
    for record in loaded.state.cycles:
        assert (out / f"{record.name}.mrc").is_file()
        rows = _star_rows(out / f"{record.name}.star")
        assert rows == record.particle_count
        assert sum(record.particle_count_per_class) == rows
        assert len(record.particle_count_per_class) == record.settings["class_number"] + 1


async def test_job_now_runs_ab_initio_then_switches_to_seeded(warp_session: Path) -> None:
    sup = Supervisor(tiny_config(), warp_folder=warp_session)
    rec = Recorder(sup.bus)
    await sup.start()
    try:
        await sup.ingest_now(settle=True)
        await sup.start_job_now(continue_automatic=False)
        with pytest.raises(SupervisorError, match="while a job is running"):
            await sup.update_settings(TINY_JOB)
        with pytest.raises(SupervisorError, match="while a job is running"):
            await sup.start_job_now()
        done = await rec.wait(lambda e: isinstance(e, JobFinished))
        assert isinstance(done, JobFinished) and done.success
        snap = sup.snapshot()
        assert snap.status is SessionStatus.STOPPED
        assert [c.number for c in snap.cycles] == [0, 1, 2, 3]
        assert [c.block_type.value for c in snap.cycles] == [
            "random_seed",
            "startup",
            "startup",
            "refinement",
        ]
        assert snap.settings.classification_type is ClassificationType.SEEDED
        assert all(c.settings["classification_type"] == "abinit" for c in snap.cycles)
        assert snap.warp is not None and snap.warp.box_size == 64
        starts = [e.index_in_job for e in rec.of(CycleStarted)]
        assert starts == [1, 2, 3, 4]
    finally:
        await sup.close()
    _check_cycle_files(warp_session / "classification")
    assert engine_processes(warp_session / "classification") == []


async def test_second_supervisor_on_same_folder_is_refused(warp_session: Path) -> None:
    first = Supervisor(tiny_config(), warp_folder=warp_session)
    await first.start()
    try:
        second = Supervisor(tiny_config(), warp_folder=warp_session)
        with pytest.raises(SupervisorError, match=r"in use by .*pid \d+"):
            await second.start()
    finally:
        await first.close()
    again = Supervisor(tiny_config(), warp_folder=warp_session)
    await again.start()
    await again.close()


async def test_automatic_jobs_trigger_and_stop_after_cycle(warp_session: Path) -> None:
    sup = Supervisor(tiny_config(), warp_folder=warp_session)
    rec = Recorder(sup.bus)
    await sup.start()
    try:
        await sup.start_automatic()
        assert sup.status in {SessionStatus.WAITING, SessionStatus.RUNNING}
        await rec.wait(lambda e: isinstance(e, CycleStarted) and e.number == 1)
        await sup.stop()
        assert sup.status is SessionStatus.STOPPING
        done = await rec.wait(lambda e: isinstance(e, JobFinished))
        assert isinstance(done, JobFinished) and done.success
        snap = sup.snapshot()
        assert [c.number for c in snap.cycles] == [0, 1]  # cycle 1 finished, no cycle 2
        assert snap.status is SessionStatus.STOPPED and not snap.automatic
    finally:
        await sup.close()


async def test_abort_removes_partial_cycle_and_leaves_no_process(warp_session: Path) -> None:
    out = warp_session / "classification"
    sup = Supervisor(tiny_config(), warp_folder=warp_session)
    rec = Recorder(sup.bus)
    await sup.start()
    try:
        await sup.ingest_now(settle=True)
        await sup.start_job_now()
        await rec.wait(lambda e: isinstance(e, CycleStarted) and e.number == 1)
        await sup.abort()
        assert sup.status is SessionStatus.STOPPED
        assert [c.number for c in sup.snapshot().cycles] == [0]
        assert not (out / "cycle_1.mrc").exists() and not (out / "cycle_1.star").exists()
        assert engine_processes(out) == []
        failed = [e for e in rec.of(CycleFinished) if not e.success]
        assert [e.number for e in failed] == [1]
    finally:
        await sup.close()
    loaded = load_state(out)
    assert loaded is not None and loaded.state.job is None


@pytest.mark.slow
async def test_closed_job_continues_at_its_next_cycle(warp_session: Path) -> None:
    out = warp_session / "classification"
    sup = Supervisor(tiny_config(), warp_folder=warp_session)
    rec = Recorder(sup.bus)
    await sup.start()
    await sup.start_automatic()
    await rec.wait(lambda e: isinstance(e, CycleStarted) and e.number == 2)
    await sup.close()  # like a crash: the running cycle ends, the job stays recorded
    saved = load_state(out)
    assert saved is not None and saved.state.job is not None
    assert saved.state.job.next_cycle_number == 2

    again = Supervisor(tiny_config(), warp_folder=warp_session)
    rec2 = Recorder(again.bus)
    await again.start()
    try:
        first = await rec2.wait(lambda e: isinstance(e, CycleStarted))
        assert isinstance(first, CycleStarted) and first.number == 2 and first.index_in_job == 3
        await rec2.wait(lambda e: isinstance(e, JobFinished))
        assert [c.number for c in again.snapshot().cycles] == [0, 1, 2, 3]
        assert again.status is SessionStatus.WAITING  # automatic jobs continue
    finally:
        await again.close(abort_running=True)
    _check_cycle_files(out)


async def test_a_mask_wider_than_half_the_box_is_refused(warp_session: Path) -> None:
    # the UI's Start and Automatic stage the form's settings through here; 64 px × 3 Å/px
    sup = Supervisor(tiny_config(), warp_folder=warp_session)
    await sup.start()
    try:
        for command in (sup.update_settings, sup.start_automatic, sup.start_job_now):
            with pytest.raises(SupervisorError, match=r"larger than half the particle box \(96 Å"):
                await command(TINY_JOB.with_changes(mask_radius=100000))
        assert not sup.job_running and sup.snapshot().settings.mask_radius == 90  # guessed
        await sup.update_settings(TINY_JOB.with_changes(mask_radius=96))  # half the box is fine
    finally:
        await sup.close()


async def test_damaged_state_is_recovered_from_previous_copy(warp_session: Path) -> None:
    out = warp_session / "classification"
    sup = Supervisor(tiny_config(), warp_folder=warp_session)
    await sup.start()
    await sup.update_settings(TINY_JOB.with_changes(mask_radius=77))
    await sup.close()
    assert (out / f"{STATE_NAME}.prev").exists()
    (out / STATE_NAME).write_text('{"cycles": [{"na')  # torn by something outside our control

    again = Supervisor(tiny_config(), warp_folder=warp_session)
    rec = Recorder(again.bus)
    await again.start()
    try:
        errors = [e.message for e in rec.of(ErrorRaised)]
        assert any("previous good copy" in m for m in errors), errors
        assert again.snapshot().settings.mask_radius == 77
    finally:
        await again.close()
    json.loads((out / STATE_NAME).read_text())  # rewritten whole
    assert (out / f"{STATE_NAME}.damaged").exists()


def _failing_pair(folder: Path) -> tuple[str, str]:
    folder.mkdir()
    paths = []
    for name in ("refine2d", "merge2d"):
        path = folder / name
        path.write_text("#!/bin/sh\necho 'Error: this engine always fails' >&2\nexit 3\n")
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
        paths.append(str(path))
    return paths[0], paths[1]


async def test_engine_that_always_fails_ends_in_failed_after_three_tries(
    warp_session: Path, tmp_path: Path
) -> None:
    refine, merge = _failing_pair(tmp_path / "bin")
    config = tiny_config(engine="cistem", refine2d=refine, merge2d=merge)
    sup = Supervisor(config, warp_folder=warp_session)
    rec = Recorder(sup.bus)
    await sup.start()
    try:
        await sup.start_automatic()
        await rec.wait(lambda e: isinstance(e, StatusChanged) and e.status is SessionStatus.FAILED)
        snap = sup.snapshot()
        assert snap.status is SessionStatus.FAILED and not snap.automatic
        assert snap.last_error and snap.cycles == ()
        assert len(rec.of(CycleStarted)) == 3  # three tries, no more
        assert [e.success for e in rec.of(JobFinished)] == [False]
        await asyncio.sleep(0.5)  # no endless re-runs
        assert len(rec.of(CycleStarted)) == 3
    finally:
        await sup.close()
    loaded = load_state(warp_session / "classification")
    assert loaded is not None and loaded.state.status is SessionStatus.FAILED


@pytest.mark.slow
async def test_change_warp_folder_reguesses_mask_and_is_refused_while_running(
    warp_session: Path, make_warp_session
) -> None:  # type: ignore[no-untyped-def]
    other = make_warp_session(micrographs=2, particles_per_micrograph=20, diameter=120.0, seed=2)
    sup = Supervisor(tiny_config(), warp_folder=warp_session)
    rec = Recorder(sup.bus)
    await sup.start()
    try:
        await sup.ingest_now(settle=True)
        await sup.start_job_now(continue_automatic=False)
        with pytest.raises(SupervisorError, match="while a job is running"):
            await sup.change_warp_folder(str(other))
        await rec.wait(lambda e: isinstance(e, JobFinished))
        await sup.change_warp_folder(str(other))
        snap = sup.snapshot()
        assert snap.warp_folder == other and snap.output_folder == other / "classification"
        assert snap.settings.mask_radius == pytest.approx(72.0)  # 0.6 × 120 Å
        assert snap.cycles == ()
        # the old folder is free again
        old = Supervisor(tiny_config(), warp_folder=warp_session)
        await old.start()
        await old.close()
    finally:
        await sup.close()


@pytest.mark.slow
async def test_force_reimport_builds_a_new_generation_and_next_job_is_ab_initio(
    warp_session: Path,
) -> None:
    sup = Supervisor(tiny_config(), warp_folder=warp_session)
    rec = Recorder(sup.bus)
    await sup.start()
    try:
        await sup.ingest_now(settle=True)
        await sup.start_job_now(continue_automatic=False)
        await rec.wait(lambda e: isinstance(e, JobFinished))
        assert sup.snapshot().settings.classification_type is ClassificationType.SEEDED
        await sup.force_reimport()
        await sup.ingest_now(settle=True)
        assert sup.session.dataset.generation == 1
        assert sup.session.state.force_abinit
        await sup.start_job_now(continue_automatic=False)
        await rec.wait_new(lambda e: isinstance(e, JobFinished))
        cycles = sup.snapshot().cycles
        assert [c.number for c in cycles] == list(range(8))
        assert cycles[4].block_type.value == "random_seed"
        assert {c.generation for c in cycles[4:]} == {1}
        assert {c.generation for c in cycles[:4]} == {0}
        assert not sup.session.state.force_abinit
    finally:
        await sup.close()
    _check_cycle_files(warp_session / "classification")


async def test_next_run_new_particles_set_by_hand_rebuilds_the_stack(warp_session: Path) -> None:
    """The original Live2D's documented remedy for a damaged stack still works."""
    out = warp_session / "classification"
    sup = Supervisor(tiny_config(), warp_folder=warp_session)
    await sup.start()
    await sup.ingest_now(settle=True)
    assert sup.session.dataset.generation == 0
    await sup.close()
    data = json.loads((out / STATE_NAME).read_text())
    data["next_run_new_particles"] = True
    (out / STATE_NAME).write_text(json.dumps(data))

    again = Supervisor(tiny_config(), warp_folder=warp_session)
    await again.start()
    try:
        counts = await again.ingest_now(settle=True)
        assert again.session.dataset.generation == 1
        assert counts is not None and counts.particles_active == counts.particles_total > 0
        assert again.session.state.force_abinit
        assert not again.session.state.next_run_new_particles  # done once, not at every start
    finally:
        await again.close()
