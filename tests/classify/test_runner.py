"""The cycle runner on the strict fake cisTEM programs (real subprocesses)."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import time
from pathlib import Path

import numpy as np
import pytest

from live2d_tui.classify.procs import ProcessRegistry, read_stat, session_members
from live2d_tui.classify.runner import CycleFailed, CycleResult, CycleRunner, split_rows
from live2d_tui.classify.schedule import plan_job
from live2d_tui.config import JobSettings
from live2d_tui.events import CycleProgress, CycleStage
from live2d_tui.formats.cistem_star import read_star
from live2d_tui.formats.mrc import read_shape, voxel_size

from .conftest import Dataset, fake_programs, make_dataset

SETTINGS = JobSettings(
    class_number=4, run_count_startup=2, run_count_refine=1, mask_radius=15.0, particles_per_class=5
)


def make_runner(
    dataset: Dataset,
    *,
    pool: int = 2,
    jobs: int = 3,
    events: list[object] | None = None,
    logs: list[str] | None = None,
    watchdog: float = 600.0,
) -> CycleRunner:
    return CycleRunner(
        dataset.folder,
        fake_programs(),
        pool_size=pool,
        jobs_per_cycle=jobs,
        watchdog_seconds=watchdog,
        publish=(events.append if events is not None else lambda e: None),
        log=(logs.append if logs is not None else lambda s: None),
        grace_seconds=2.0,
    )


async def run_job(
    runner: CycleRunner, dataset: Dataset, active: np.ndarray | None = None, cycles: int = 99
) -> list[CycleResult]:
    plan = plan_job(SETTINGS, last_cycle_number=None)
    results: list[CycleResult] = []
    previous: int | None = None
    for cycle in plan.cycles[:cycles]:
        results.append(
            await runner.run_cycle(cycle, dataset.inputs(active, previous=previous), SETTINGS)
        )
        previous = cycle.number
    return results


def runs(state: Path) -> list[dict[str, object]]:
    path = state / "runs.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def peak(state: Path) -> int:
    return int(json.loads((state / "counter.json").read_text())["peak"])


def running(state: Path) -> int:
    """Jobs the fakes report as running (0 while the counter file is being rewritten)."""
    try:
        return int(json.loads((state / "counter.json").read_text())["running"])
    except (OSError, ValueError):
        return 0


async def wait_running(state: Path, count: int) -> None:
    for _ in range(1200):
        await asyncio.sleep(0.05)
        if running(state) == count:
            return
    pytest.fail("jobs did not start")


def assert_no_processes(state: Path) -> None:
    for run in runs(state):
        sid = int(run["sid"])  # type: ignore[call-overload]
        assert session_members(sid) == [], f"job session {sid} still has processes"


def test_split_rows_balanced_contiguous_never_empty() -> None:
    assert split_rows(10, 3) == [(0, 4), (4, 7), (7, 10)]
    assert split_rows(2, 5) == [(0, 1), (1, 2)]
    for count in range(1, 60):
        for jobs in range(1, 40):
            ranges = split_rows(count, jobs)
            sizes = [end - start for start, end in ranges]
            assert len(ranges) == min(count, jobs)
            assert min(sizes) >= 1 and max(sizes) - min(sizes) <= 1
            assert ranges[0][0] == 0 and ranges[-1][1] == count
            assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))
    with pytest.raises(ValueError):
        split_rows(0, 3)


async def test_seed_and_refinement_cycles(dataset: Dataset, fake_state: Path) -> None:
    events: list[object] = []
    logs: list[str] = []
    runner = make_runner(dataset, events=events, logs=logs)
    results = await run_job(runner, dataset)
    assert [r.number for r in results] == [0, 1, 2, 3]
    seed, first = results[0], results[1]
    assert seed.process_count == 1 and seed.class_count == 4
    assert seed.members == [dataset.count, 0, 0, 0, 0]
    # random start fraction: min(1, K × ppc / N) = 20 / 40
    assert seed.fraction_used == pytest.approx(0.5)
    assert first.process_count == 3 and first.fraction_used == pytest.approx(0.5)
    assert results[-1].fraction_used == 1.0
    for result in results:
        rows = read_star(result.star_path)
        assert rows["position"].tolist() == list(range(1, dataset.count + 1))
        assert result.particle_count == dataset.count == sum(result.members)
        shape = read_shape(result.classes_path)
        assert (shape.nz, shape.ny, shape.nx) == (4, dataset.box, dataset.box)
        assert voxel_size(result.classes_path) == pytest.approx((dataset.pixel_size,) * 3)
    assert sum(results[1].used[1:]) < dataset.count  # about half used in startup cycles
    # scratch removed, logs kept, nothing left running or registered
    for number in range(4):
        left = sorted(p.name for p in (dataset.folder / "cycles" / f"cycle_{number}").iterdir())
        assert left and all(name.endswith(".log") for name in left), left
    assert ProcessRegistry(dataset.folder).load() == []
    assert_no_processes(fake_state)
    # every job ran niced, single-threaded, in the output folder with relative paths
    records = runs(fake_state)
    assert len(records) == 1 + 3 * (3 + 1)  # seed, then 3 cycles of 3 refine2d + merge2d
    for record in records:
        assert record["nice"] == 10 and record["omp"] == "1"
        assert Path(str(record["cwd"])) == dataset.folder.resolve()
        answers = record["answers"]
        assert isinstance(answers, list)
        assert not any(str(a).startswith(str(dataset.folder)) for a in answers)
    progress = [e for e in events if isinstance(e, CycleProgress)]
    assert progress[-1].percent == 100.0 and progress[-1].runs_done == progress[-1].runs_total == 3
    assert {e.stage for e in progress} >= {CycleStage.PREPARING, CycleStage.MERGING}
    assert any("Calculating new class averages" in line for line in logs)
    assert any("members: 1:" in line for line in logs)


@pytest.mark.parametrize(("slots", "jobs"), [(2, 6), (3, 7)])
async def test_peak_concurrency_equals_slots(
    dataset: Dataset, fake_state: Path, monkeypatch: pytest.MonkeyPatch, slots: int, jobs: int
) -> None:
    runner = make_runner(dataset, pool=slots, jobs=jobs)
    await run_job(runner, dataset, cycles=1)
    monkeypatch.setenv("FAKE_SLEEP", "0.4")
    (fake_state / "counter.json").unlink()
    plan = plan_job(SETTINGS, last_cycle_number=None)
    result = await runner.run_cycle(plan.cycles[1], dataset.inputs(previous=0), SETTINGS)
    assert result.process_count == jobs
    assert peak(fake_state) == slots


async def test_gaps_and_nz_give_each_input_row_exactly_once(
    dataset: Dataset, fake_state: Path
) -> None:
    active = np.array([1, 2, 3, 7, 8, 15, 16, 17, 18, 25, 31, 32, 39, 40])
    runner = make_runner(dataset, pool=2, jobs=4)
    plan = plan_job(SETTINGS, last_cycle_number=None)
    inputs = dataset.inputs(active, nz=35)
    await runner.run_cycle(plan.cycles[0], inputs, SETTINGS)
    inputs = dataset.inputs(active, nz=35, previous=0)
    result = await runner.run_cycle(plan.cycles[1], inputs, SETTINGS)
    expected = [p for p in active.tolist() if p <= 35]
    assert read_star(result.star_path)["position"].tolist() == expected
    refine_runs = [r for r in runs(fake_state) if r["program"] == "refine2d"][1:]
    ranges = sorted((int(r["answers"][6]), int(r["answers"][7])) for r in refine_runs)  # type: ignore[index]
    assert ranges == [(1, 3), (7, 15), (16, 18), (25, 32)]


async def test_phase_shift_survives_ten_cycles(tmp_path: Path, fake_state: Path) -> None:
    dataset = make_dataset(tmp_path / "pp", count=24, phase_shift=63.5)
    settings = JobSettings(
        class_number=3, run_count_startup=10, run_count_refine=0, mask_radius=15.0
    )
    runner = make_runner(dataset, pool=2, jobs=2)
    plan = plan_job(settings, last_cycle_number=None)
    previous: int | None = None
    for cycle in plan.cycles:
        result = await runner.run_cycle(cycle, dataset.inputs(previous=previous), settings)
        previous = cycle.number
    assert result.number == 10
    rows = read_star(result.star_path)
    assert rows["phase_shift"].tolist() == [63.5] * 24
    # the fake wrote radians back, like cisTEM: the runner restored degrees every cycle
    part_runs = [r for r in runs(fake_state) if r["program"] == "refine2d"]
    assert len(part_runs) == 1 + 10 * 2


async def test_a_failed_job_is_retried_once(
    dataset: Dataset, fake_state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    logs: list[str] = []
    runner = make_runner(dataset, logs=logs)
    await run_job(runner, dataset, cycles=1)
    monkeypatch.setenv("FAKE_FAIL_FIRST", "15")  # job 2 of 3 covers 15–27
    monkeypatch.setenv("FAKE_FAIL_MODE", "once")
    plan = plan_job(SETTINGS, last_cycle_number=None)
    result = await runner.run_cycle(plan.cycles[1], dataset.inputs(previous=0), SETTINGS)
    assert result.particle_count == dataset.count
    assert any("refine2d_2 failed (exit status 1); retrying once" in line for line in logs)
    logs_left = {
        p.name.split("_")[-1] for p in (dataset.folder / "cycles" / "cycle_1").glob("refine2d_2_*")
    }
    assert logs_left == {"try1.log", "try2.log"}


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    ("mode", "reason"), [("always", "exit status 1"), ("noterm", "no 'Refine2D")]
)
async def test_a_job_failing_twice_fails_the_cycle_and_keeps_earlier_cycles(
    dataset: Dataset, fake_state: Path, monkeypatch: pytest.MonkeyPatch, mode: str, reason: str
) -> None:
    logs: list[str] = []
    runner = make_runner(dataset, logs=logs)
    await run_job(runner, dataset, cycles=1)
    before = {p.name: digest(p) for p in dataset.folder.glob("cycle_0.*")}
    monkeypatch.setenv("FAKE_FAIL_FIRST", "28")
    monkeypatch.setenv("FAKE_FAIL_MODE", mode)
    plan = plan_job(SETTINGS, last_cycle_number=None)
    with pytest.raises(CycleFailed) as info:
        await runner.run_cycle(plan.cycles[1], dataset.inputs(previous=0), SETTINGS)
    assert "refine2d_3 failed twice" in info.value.message and reason in info.value.message
    if mode == "always":
        assert any("simulated crash" in line for line in info.value.last_lines)
    assert not (dataset.folder / "cycle_1.mrc").exists()
    assert not (dataset.folder / "cycle_1.star").exists()
    assert {p.name: digest(p) for p in dataset.folder.glob("cycle_0.*")} == before
    left = [p.name for p in (dataset.folder / "cycles" / "cycle_1").iterdir()]
    assert all(name.endswith(".log") for name in left)
    assert any("Cycle 1 failed" in line for line in logs)
    assert_no_processes(fake_state)


async def test_watchdog_ends_a_job_whose_cpu_time_stalls(
    dataset: Dataset, fake_state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = make_runner(dataset, watchdog=1.0)
    await run_job(runner, dataset, cycles=1)
    monkeypatch.setenv("FAKE_FAIL_FIRST", "1")
    monkeypatch.setenv("FAKE_FAIL_MODE", "hang")
    plan = plan_job(SETTINGS, last_cycle_number=None)
    with pytest.raises(CycleFailed, match="hung"):
        await runner.run_cycle(plan.cycles[1], dataset.inputs(previous=0), SETTINGS)
    assert_no_processes(fake_state)


async def test_busy_silent_job_is_not_hung(
    dataset: Dataset, fake_state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = make_runner(dataset, pool=1, jobs=1, watchdog=0.5)
    monkeypatch.setenv("FAKE_SPIN", "1.5")
    plan = plan_job(SETTINGS, last_cycle_number=None)
    result = await runner.run_cycle(plan.cycles[0], dataset.inputs(), SETTINGS)
    assert result.class_count == 4


async def test_merge_failure_fails_the_cycle(
    dataset: Dataset, fake_state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = make_runner(dataset)
    await run_job(runner, dataset, cycles=1)
    monkeypatch.setenv("FAKE_MERGE_FAIL", "always")
    plan = plan_job(SETTINGS, last_cycle_number=None)
    with pytest.raises(CycleFailed, match="merge2d failed twice"):
        await runner.run_cycle(plan.cycles[1], dataset.inputs(previous=0), SETTINGS)
    assert not (dataset.folder / "cycle_1.mrc").exists()


async def test_unusable_inputs_fail_before_any_launch(dataset: Dataset, fake_state: Path) -> None:
    runner = make_runner(dataset)
    plan = plan_job(SETTINGS, last_cycle_number=None)
    with pytest.raises(CycleFailed, match="previous cycle's class averages"):
        inputs = dataset.inputs()
        await runner.run_cycle(plan.cycles[1], inputs, SETTINGS)
    with pytest.raises(CycleFailed, match="slices"):
        await runner.run_cycle(plan.cycles[0], dataset.inputs(nz=dataset.count + 5), SETTINGS)
    with pytest.raises(CycleFailed, match="no active particles"):
        await runner.run_cycle(plan.cycles[0], dataset.inputs(np.array([], dtype=int)), SETTINGS)
    assert runs(fake_state) == []


async def test_abort_ends_every_job_and_removes_partial_outputs(
    dataset: Dataset, fake_state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = make_runner(dataset, pool=2, jobs=4)
    await run_job(runner, dataset, cycles=1)
    monkeypatch.setenv("FAKE_SLEEP", "120")
    plan = plan_job(SETTINGS, last_cycle_number=None)
    task = asyncio.create_task(
        runner.run_cycle(plan.cycles[1], dataset.inputs(previous=0), SETTINGS)
    )
    await wait_running(fake_state, 2)
    running = [r for r in runs(fake_state) if r["program"] == "refine2d"][1:]
    assert len(running) == 2
    assert len(ProcessRegistry(dataset.folder).load()) == 2
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for record in running:
        stat = read_stat(int(record["pid"]))  # type: ignore[call-overload]
        assert stat is None or stat.state == "Z"
    assert_no_processes(fake_state)
    assert ProcessRegistry(dataset.folder).load() == []
    assert not (dataset.folder / "cycle_1.mrc").exists()
    left = [p.name for p in (dataset.folder / "cycles" / "cycle_1").iterdir()]
    assert all(name.endswith(".log") for name in left), left


async def test_abort_escalates_to_sigkill_when_sigterm_is_ignored(
    dataset: Dataset, fake_state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CycleRunner(
        dataset.folder, fake_programs(), pool_size=2, jobs_per_cycle=2, grace_seconds=0.5
    )
    await run_job(runner, dataset, cycles=1)
    monkeypatch.setenv("FAKE_FAIL_FIRST", "1")
    monkeypatch.setenv("FAKE_FAIL_MODE", "ignoreterm")
    monkeypatch.setenv("FAKE_SLEEP", "120")
    plan = plan_job(SETTINGS, last_cycle_number=None)
    task = asyncio.create_task(
        runner.run_cycle(plan.cycles[1], dataset.inputs(previous=0), SETTINGS)
    )
    await wait_running(fake_state, 2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert_no_processes(fake_state)
    assert ProcessRegistry(dataset.folder).load() == []


async def test_data_and_loop_in_the_output_folder_path_are_harmless(
    tmp_path: Path, fake_state: Path
) -> None:
    dataset = make_dataset(tmp_path / "data_2026" / "loop_runs" / "session", count=20)
    runner = make_runner(dataset, jobs=2)
    results = await run_job(runner, dataset, cycles=2)
    assert read_star(results[1].star_path)["position"].tolist() == list(range(1, 21))
    for record in runs(fake_state):
        assert not any("data_" in str(a) or "loop_" in str(a) for a in record["answers"])  # type: ignore[attr-defined]


async def test_a_job_star_missing_a_row_fails_the_cycle(
    dataset: Dataset, fake_state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = make_runner(dataset)
    await run_job(runner, dataset, cycles=1)
    monkeypatch.setenv("FAKE_FAIL_FIRST", "15")
    monkeypatch.setenv("FAKE_FAIL_MODE", "droprow")
    plan = plan_job(SETTINGS, last_cycle_number=None)
    with pytest.raises(CycleFailed, match="run 2 wrote 12 rows, expected exactly the 13"):
        await runner.run_cycle(plan.cycles[1], dataset.inputs(previous=0), SETTINGS)
    assert not (dataset.folder / "cycle_1.mrc").exists()
    assert not (dataset.folder / "cycle_1.star").exists()
    # merge2d ran beside the join; it was stopped (or had finished) and left nothing behind
    assert ProcessRegistry(dataset.folder).load() == []
    assert_no_processes(fake_state)
    left = sorted(p.name for p in (dataset.folder / "cycles" / "cycle_1").iterdir())
    assert all(name.endswith(".log") for name in left), left


async def test_a_missing_program_fails_clearly(dataset: Dataset, fake_state: Path) -> None:
    programs = fake_programs()
    broken = type(programs)(programs.kind, ["/nonexistent/refine2d"], programs.merge2d)
    runner = CycleRunner(dataset.folder, broken, pool_size=1, jobs_per_cycle=1)
    plan = plan_job(SETTINGS, last_cycle_number=None)
    with pytest.raises(CycleFailed, match="cannot start /nonexistent/refine2d"):
        await runner.run_cycle(plan.cycles[0], dataset.inputs(), SETTINGS)


@pytest.mark.slow
async def test_abort_at_random_moments_leaves_nothing_behind(
    dataset: Dataset, fake_state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import random

    from live2d_tui.classify.procs import marked_processes

    runner = CycleRunner(
        dataset.folder, fake_programs(), pool_size=2, jobs_per_cycle=5, grace_seconds=1.0
    )
    await run_job(runner, dataset, cycles=1)
    monkeypatch.setenv("FAKE_SLEEP", "0.3")
    plan = plan_job(SETTINGS, last_cycle_number=None)
    rng = random.Random(4)
    outcomes = []
    for trial in range(20):
        task = asyncio.create_task(
            runner.run_cycle(plan.cycles[1], dataset.inputs(previous=0), SETTINGS)
        )
        await asyncio.sleep(rng.uniform(0.0, 1.5))
        task.cancel()
        try:
            await task
            outcomes.append("completed")
            for name in ("cycle_1.mrc", "cycle_1.star"):
                (dataset.folder / name).unlink()
        except asyncio.CancelledError:
            outcomes.append("aborted")
            assert not (dataset.folder / "cycle_1.mrc").exists(), trial
            assert not (dataset.folder / "cycle_1.star").exists(), trial
        assert marked_processes(dataset.folder) == [], trial
        assert ProcessRegistry(dataset.folder).load() == [], trial
        left = [p.name for p in (dataset.folder / "cycles" / "cycle_1").iterdir()]
        assert all(name.endswith(".log") for name in left), (trial, left)
    assert_no_processes(fake_state)
    assert "aborted" in outcomes


@pytest.mark.parametrize("step", ["input star", "install"])
async def test_an_abort_while_a_thread_writes_leaves_nothing_behind(
    dataset: Dataset, fake_state: Path, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    """A worker thread cannot be stopped: when the cycle is cancelled while a thread writes its
    input star or installs ``cycle_<N>``, the cleanup must wait for the thread, and an install
    that went through is undone. The cleanup once ran first, and what the thread finished
    afterwards stayed behind (seen once in CI in the random-abort test above)."""
    from live2d_tui.classify import assemble, attempt

    runner = make_runner(dataset)
    await run_job(runner, dataset, cycles=1)
    started = asyncio.Event()
    loop = asyncio.get_running_loop()
    module, name = (attempt, "write_star") if step == "input star" else (assemble, "install")
    original = getattr(module, name)

    def slow(*args: object, **kwargs: object) -> object:
        # the cancellation arrives during the pause: before the star is written, or after the
        # install went through but before its thread returns
        done = original(*args, **kwargs) if step == "install" else None
        loop.call_soon_threadsafe(started.set)
        time.sleep(0.5)
        return done if step == "install" else original(*args, **kwargs)

    monkeypatch.setattr(module, name, slow)
    plan = plan_job(SETTINGS, last_cycle_number=None)
    task = asyncio.create_task(
        runner.run_cycle(plan.cycles[1], dataset.inputs(previous=0), SETTINGS)
    )
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.8)  # long enough for a thread left running to finish its write
    left = [p.name for p in (dataset.folder / "cycles" / "cycle_1").iterdir()]
    assert all(name.endswith(".log") for name in left), left
    assert not (dataset.folder / "cycle_1.mrc").exists()
    assert not (dataset.folder / "cycle_1.star").exists()


async def test_a_new_abinit_seed_ignores_earlier_assignments(
    dataset: Dataset, fake_state: Path
) -> None:
    runner = make_runner(dataset)
    first_job = await run_job(runner, dataset, cycles=2)
    assert sum(first_job[1].members[1:]) > 0
    settings = JobSettings(class_number=2, mask_radius=15.0, particles_per_class=5)
    plan = plan_job(settings, last_cycle_number=1, force_abinit=True)
    seed = await runner.run_cycle(plan.cycles[0], dataset.inputs(previous=1), settings)
    assert seed.number == 2 and seed.class_count == 2
    assert seed.members == [dataset.count, 0, 0]
    assert set(read_star(seed.star_path)["best_class"].tolist()) == {0}
