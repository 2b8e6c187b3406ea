"""The SLURM executor against a real SLURM (``.ci/slurm-up``; skipped, or failed with
``LIVE2D_REQUIRE_SLURM=1``, when none answers). Jobs ask for one CPU each: the CI node has two,
and its default memory per CPU lets two jobs share it, so a third waits in the queue."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from pathlib import Path

import mrcfile
import numpy as np
import pytest

from live2d_tui.classify.engines import resolve_engine
from live2d_tui.classify.executors.slurm import SlurmExecutor
from live2d_tui.classify.executors.slurm_cli import (
    SlurmSettings,
    parse_squeue_mine,
    parse_squeue_states,
    run_sync,
    sbatch_argv,
    scancel_argv,
    squeue_mine_argv,
    squeue_states_argv,
)
from live2d_tui.classify.executors.slurm_jobs import (
    REGISTRY_NAME,
    SlurmEntry,
    SlurmRegistry,
    belongs_to,
    end_slurm_orphans,
    job_comment,
    job_name,
)
from live2d_tui.classify.runner import CycleFailed, CycleRunner
from live2d_tui.classify.schedule import plan_job
from live2d_tui.config import EngineKind, JobSettings, ServerConfig
from live2d_tui.events import CycleProgress, Event
from live2d_tui.formats.cistem_star import read_star

from .conftest import Dataset, fake_programs, make_dataset

pytestmark = pytest.mark.usefixtures("slurm")

FAST = SlurmSettings(poll_seconds=0.5, file_wait_seconds=30.0)
"""Poll often: CI's SLURM forgets an ended job (and its reason) 10–20 s after it ends."""


def live_jobs(folder: Path) -> list[int]:
    """Ids of this folder's jobs SLURM still lists as pending or running."""
    result = run_sync(squeue_mine_argv())
    assert result.returncode == 0, result.message()
    return [j.job_id for j in parse_squeue_mine(result.stdout) if belongs_to(j, folder)]


def states(ids: list[int]) -> dict[int, str]:
    result = run_sync(squeue_states_argv(ids))
    return {i: s.state for i, s in parse_squeue_states(result.stdout).items()}


def submit(folder: Path, run: str, command: str, *, comment: str | None = None) -> int:
    """A job like the executor's (its name and comment), running ``command``."""
    log = folder / f"{run}.log"
    argv = sbatch_argv(
        SlurmSettings(),
        name=job_name(folder, run),
        comment=comment if comment is not None else job_comment(folder, run, "abcd1234"),
        log_path=log,
        cwd=folder,
    )
    result = run_sync(argv, stdin=f"#!/bin/bash\n{command}\n")
    assert result.returncode == 0, result.message()
    return int(result.stdout.strip().split(";")[0])


def small_job() -> JobSettings:
    return JobSettings(
        class_number=3,
        run_count_startup=1,
        run_count_refine=1,
        mask_radius=30.0,
        particles_per_class=10,
    )


async def run_job(runner: CycleRunner, dataset: Dataset, settings: JobSettings) -> list[Path]:
    """Every cycle of an ab initio job; the class files of each."""
    previous: int | None = None
    classes: list[Path] = []
    for cycle in plan_job(settings, last_cycle_number=None).cycles:
        result = await runner.run_cycle(cycle, dataset.inputs(previous=previous), settings)
        previous = cycle.number
        classes.append(result.classes_path)
    return classes


@pytest.mark.parametrize("merge2d_on_slurm", [False, True], ids=["merge2d-local", "merge2d-slurm"])
async def test_slurm_ab_initio_gives_the_local_executors_classes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, merge2d_on_slurm: bool
) -> None:
    # the engine draws its random numbers from LIVE2D_ENGINE_SEED: it must reach the SLURM jobs
    monkeypatch.setenv("LIVE2D_ENGINE_SEED", "20261207")
    programs = resolve_engine(ServerConfig(engine=EngineKind.BUILTIN))
    settings = small_job()
    local_data = make_dataset(tmp_path / "local", count=60, box=32, phase_shift=30.0)
    local = CycleRunner(local_data.folder, programs, pool_size=2, jobs_per_cycle=2)
    expected = await run_job(local, local_data, settings)

    slurm_data = make_dataset(tmp_path / "slurm", count=60, box=32, phase_shift=30.0)
    events: list[Event] = []
    logs: list[str] = []
    executor = SlurmExecutor(FAST, slurm_data.folder, log=logs.append)
    runner = CycleRunner(
        slurm_data.folder,
        programs,
        pool_size=2,
        jobs_per_cycle=2,
        executor=executor,
        merge2d_local=not merge2d_on_slurm,
        publish=events.append,
        log=logs.append,
    )
    got = await run_job(runner, slurm_data, settings)

    for mine, theirs in zip(got, expected, strict=True):
        with mrcfile.open(mine) as a, mrcfile.open(theirs) as b:
            np.testing.assert_array_equal(a.data, b.data)
        rows = read_star(mine.with_suffix(".star"))
        reference = read_star(theirs.with_suffix(".star"))
        for column in ("best_class", "psi", "x_shift", "y_shift", "score", "phase_shift"):
            np.testing.assert_array_equal(rows[column], reference[column], err_msg=column)
    cycle_dir = slurm_data.folder / "cycles" / "cycle_2"
    job_logs = sorted(cycle_dir.glob("refine2d_*.log"))
    assert len(job_logs) == 2
    for log in job_logs:
        text = log.read_text()
        assert text.startswith("[live2d] SLURM job "), text[:200]
        assert "Refine2D: Normal termination" in text
    merge_log = next(cycle_dir.glob("merge2d_*.log")).read_text()
    assert merge_log.startswith("[live2d] SLURM job ") == merge2d_on_slurm
    assert not any("echo differs" in line for line in logs), logs
    assert not list(cycle_dir.glob("*.end"))
    assert not (slurm_data.folder / "cycles" / REGISTRY_NAME).exists()
    running = [e.runs_running for e in events if isinstance(e, CycleProgress)]
    # both runs may overlap, or one may end before SLURM starts the other on a loaded node: the
    # counts must show at least one running, never more than the cycle's two, and none at the end
    assert 1 <= max(running) <= 2 and running[-1] == 0
    assert live_jobs(slurm_data.folder) == []


async def test_abort_cancels_every_job_and_waits_until_slurm_reports_them_ended(
    dataset: Dataset, fake_state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_SLEEP", "120")
    settings = JobSettings(class_number=4, mask_radius=15.0, run_count_startup=2)
    plan = plan_job(settings, last_cycle_number=None)
    seeder = CycleRunner(dataset.folder, fake_programs(), pool_size=1, jobs_per_cycle=1)
    monkeypatch.setenv("FAKE_SLEEP", "0")
    await seeder.run_cycle(plan.cycles[0], dataset.inputs(), settings)
    monkeypatch.setenv("FAKE_SLEEP", "120")

    events: list[Event] = []
    executor = SlurmExecutor(replace(FAST, max_jobs=3), dataset.folder)
    runner = CycleRunner(
        dataset.folder,
        fake_programs(),
        pool_size=1,
        jobs_per_cycle=3,
        executor=executor,
        publish=events.append,
    )
    cycle = asyncio.create_task(
        runner.run_cycle(plan.cycles[1], dataset.inputs(previous=0), settings)
    )

    def counts() -> tuple[int, int]:
        last = [e for e in events if isinstance(e, CycleProgress)]
        return (last[-1].runs_running, last[-1].runs_queued) if last else (0, 0)

    deadline = time.monotonic() + 60
    while counts() != (2, 1) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    # two jobs fill the node; the third waits in SLURM's queue and is shown as queued
    assert counts() == (2, 1), counts()
    ids = [e.job_id for e in executor.registry.load()]
    assert len(ids) == 3 and all(ids)
    assert sorted(states(ids).values()) == ["PENDING", "RUNNING", "RUNNING"]

    cycle.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cycle
    # when the abort returns, SLURM already reports every job ended
    assert set(states(ids).values()) <= {"CANCELLED"}, states(ids)
    assert live_jobs(dataset.folder) == []
    assert not (dataset.folder / "cycles" / REGISTRY_NAME).exists()
    assert not list((dataset.folder / "cycles").glob("cycle_1/*.end"))


async def test_a_job_that_can_never_start_fails_at_once(dataset: Dataset, fake_state: Path) -> None:
    settings = JobSettings(class_number=4, mask_radius=15.0)
    plan = plan_job(settings, last_cycle_number=None)
    # more CPUs than the node has: SLURM accepts it and leaves it pending (PartitionConfig)
    executor = SlurmExecutor(replace(FAST, cpus_per_task=64), dataset.folder)
    logs: list[str] = []
    runner = CycleRunner(
        dataset.folder,
        fake_programs(),
        pool_size=1,
        jobs_per_cycle=1,
        executor=executor,
        log=logs.append,
    )
    with pytest.raises(CycleFailed, match=r"could never start.*PartitionConfig"):
        await runner.run_cycle(plan.cycles[0], dataset.inputs(), settings)
    assert any("retrying once" in line for line in logs), logs
    assert live_jobs(dataset.folder) == []


def test_orphans_are_found_by_comment_even_without_a_recorded_id(tmp_path: Path) -> None:
    folder = (tmp_path / "out").resolve()
    other = (tmp_path / "other").resolve()
    folder.mkdir()
    other.mkdir()
    # the supervisor died after sbatch returned, before the id was saved: only an intent
    registry = SlurmRegistry(folder)
    registry.intend("abcd1234", "cycle_3_refine2d_1_try1")
    ours = submit(folder, "cycle_3_refine2d_1_try1", "sleep 300")
    # a job of another folder, whose id a stale registry entry names (ids restart low after a
    # clean SLURM start): never touched
    theirs = submit(other, "cycle_1_refine2d_1_try1", "sleep 300")
    SlurmRegistry(folder).replace([SlurmEntry("feed0000", "cycle_1_refine2d_1_try1", theirs, 0.0)])
    # a job that ended while the supervisor was down left its end record beside its log
    cycle_dir = folder / "cycles" / "cycle_2"
    cycle_dir.mkdir(parents=True)
    (cycle_dir / "refine2d_1_abcdef_try1.log").write_text("log\n")
    (cycle_dir / "refine2d_1_abcdef_try1.log.end").write_text("exit=0\n")
    lines: list[str] = []
    try:
        assert end_slurm_orphans(folder, lines.append, configured=False) == 1
        assert [p.name for p in cycle_dir.iterdir()] == ["refine2d_1_abcdef_try1.log"]
        assert states([ours])[ours] == "CANCELLED"
        assert states([theirs])[theirs] in {"PENDING", "RUNNING"}
        assert live_jobs(folder) == []
        assert not (folder / "cycles" / REGISTRY_NAME).exists()
        assert any(f"Cancelling SLURM job {ours}" in line for line in lines), lines
    finally:
        run_sync(scancel_argv([ours, theirs]))


def test_no_registry_and_no_slurm_executor_asks_nothing(tmp_path: Path) -> None:
    lines: list[str] = []
    assert end_slurm_orphans(tmp_path, lines.append, configured=False) == 0
    assert lines == []


@pytest.mark.slow
async def test_a_pending_job_is_queued_not_hung(
    dataset: Dataset, fake_state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = JobSettings(class_number=4, mask_radius=15.0, run_count_startup=2)
    plan = plan_job(settings, last_cycle_number=None)
    seeder = CycleRunner(dataset.folder, fake_programs(), pool_size=1, jobs_per_cycle=1)
    await seeder.run_cycle(plan.cycles[0], dataset.inputs(), settings)
    # each run computes for 4 s; the third waits about as long in the queue, twice the
    # watchdog's limit: the watchdog starts with the program, not with the submission
    monkeypatch.setenv("FAKE_SPIN", "4")
    events: list[Event] = []
    logs: list[str] = []
    executor = SlurmExecutor(replace(FAST, max_jobs=3, watchdog_seconds=2.0), dataset.folder)
    runner = CycleRunner(
        dataset.folder,
        fake_programs(),
        pool_size=1,
        jobs_per_cycle=3,
        executor=executor,
        publish=events.append,
        log=logs.append,
    )
    result = await runner.run_cycle(plan.cycles[1], dataset.inputs(previous=0), settings)
    assert result.process_count == 3
    progress = [e for e in events if isinstance(e, CycleProgress)]
    assert any(e.runs_queued == 1 and e.runs_running == 2 for e in progress)
    assert not any("hung" in line or "retrying" in line for line in logs), logs


@pytest.mark.slow
async def test_a_job_killed_by_its_time_limit_is_reported_and_retried(
    dataset: Dataset, fake_state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the first try sleeps for ever (no CPU; the watchdog is set longer than the time limit)
    monkeypatch.setenv("FAKE_FAIL_FIRST", "1")
    monkeypatch.setenv("FAKE_FAIL_MODE", "hangonce")
    settings = JobSettings(class_number=4, mask_radius=15.0)
    plan = plan_job(settings, last_cycle_number=None)
    logs: list[str] = []
    executor = SlurmExecutor(
        replace(FAST, time_limit_minutes=1, watchdog_seconds=600.0), dataset.folder, log=logs.append
    )
    runner = CycleRunner(
        dataset.folder,
        fake_programs(),
        pool_size=1,
        jobs_per_cycle=1,
        executor=executor,
        log=logs.append,
    )
    result = await runner.run_cycle(plan.cycles[0], dataset.inputs(), settings)
    assert result.class_count == 4
    failed = [line for line in logs if "failed (" in line]
    assert len(failed) == 1, logs
    assert "ended by SLURM: TIMEOUT, reason TimeLimit" in failed[0], failed
    assert "retrying once" in failed[0]
    first = next((dataset.folder / "cycles" / "cycle_0").glob("refine2d_1_*_try1.log")).read_text()
    assert "DUE TO TIME LIMIT" in first
    assert live_jobs(dataset.folder) == []


async def test_a_job_cancelled_by_someone_else_is_reported_and_retried(
    dataset: Dataset, fake_state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_FAIL_FIRST", "1")
    monkeypatch.setenv("FAKE_FAIL_MODE", "hangonce")
    settings = JobSettings(class_number=4, mask_radius=15.0)
    plan = plan_job(settings, last_cycle_number=None)
    logs: list[str] = []
    executor = SlurmExecutor(FAST, dataset.folder, log=logs.append)
    runner = CycleRunner(
        dataset.folder,
        fake_programs(),
        pool_size=1,
        jobs_per_cycle=1,
        executor=executor,
        log=logs.append,
    )
    cycle = asyncio.create_task(runner.run_cycle(plan.cycles[0], dataset.inputs(), settings))
    deadline = time.monotonic() + 60
    while not (fake_state / "hung_once_1").exists() and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    (job,) = live_jobs(dataset.folder)
    run_sync(scancel_argv([job]))  # an administrator's scancel
    result = await cycle
    assert result.class_count == 4
    failed = [line for line in logs if "failed (" in line]
    assert failed == [
        f"Cycle 0: refine2d_1 failed (SLURM job {job} ended by SLURM: CANCELLED); retrying once"
    ], logs
    assert live_jobs(dataset.folder) == []
