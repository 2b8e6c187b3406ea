"""Streaming updates on the strict fake cisTEM (real subprocesses): every particle counted once
in the sums, inactive ones leaving, mismatched class sets refused, disk bounded."""

from __future__ import annotations

import json
from pathlib import Path

import mrcfile
import numpy as np
import pytest

from live2d_tui.classify.runner import CycleFailed, CycleRunner
from live2d_tui.classify.schedule import plan_job
from live2d_tui.classify.streaming.index import stream_folder
from live2d_tui.classify.streaming.runner import StreamError, StreamRunner
from live2d_tui.config import JobSettings
from live2d_tui.formats.cistem_star import read_star
from live2d_tui.formats.dumps import read_total

from .conftest import Dataset, fake_programs, make_dataset
from .test_runner import runs

SETTINGS = JobSettings(
    class_number=4,
    run_count_startup=1,
    run_count_refine=1,
    mask_radius=15.0,
    particles_per_class=5,
    stream_batch=8,
    stream_revisit=1,
)


def make_runner(dataset: Dataset, logs: list[str] | None = None) -> CycleRunner:
    return CycleRunner(
        dataset.folder,
        fake_programs(),
        pool_size=2,
        jobs_per_cycle=2,
        log=(logs.append if logs is not None else lambda s: None),
        grace_seconds=2.0,
    )


async def classify(
    dataset: Dataset,
    runner: CycleRunner,
    active: np.ndarray,
    nz: int,
    settings: JobSettings = SETTINGS,
) -> int:
    """A seed and one refinement cycle over ``active`` up to ``nz``; returns the last cycle."""
    plan = plan_job(settings, last_cycle_number=None)
    previous: int | None = None
    for cycle in plan.cycles[:2]:
        inputs = dataset.inputs(active, nz=nz, previous=previous)
        await runner.run_cycle(cycle, inputs, settings)
        previous = cycle.number
    assert previous is not None
    return previous


def checksum(positions: np.ndarray) -> float:
    return float(np.sum(np.asarray(positions) % 97))


def check_state(dataset: Dataset, stream: StreamRunner, active: np.ndarray) -> None:
    """Every active particle of a block is in the sums exactly once (the fake's dumps count
    particles and a checksum of their positions), and in exactly one block's rows."""
    index = stream.state()
    assert index is not None
    folder = stream_folder(dataset.folder)
    total = read_total(folder / index.total)
    rows = np.concatenate([read_star(folder / b.star)["position"] for b in index.blocks if b.star])
    assert len(rows) == len(np.unique(rows)) == index.particles
    expected = active[active <= index.cursor.position]
    assert np.array_equal(np.sort(rows), expected)
    assert total.processed == len(expected)
    assert total.sums[:, 0, 0].real.sum() == pytest.approx(len(expected))
    assert total.sums[:, 0, 1].real.sum() == pytest.approx(checksum(expected))
    names = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert names == index.files() | {"index.json"}, "orphans or missing files"
    assert stream.check_total() < 1e-9


async def test_updates_fold_new_particles_in_and_keep_each_once(
    tmp_path: Path, fake_state: Path
) -> None:
    dataset = make_dataset(tmp_path / "session", count=60)
    logs: list[str] = []
    runner = make_runner(dataset, logs)
    active = np.arange(1, 61)
    base = await classify(dataset, runner, active, nz=24)
    stream = StreamRunner(runner)
    index = await stream.start(base, dataset.inputs(active, nz=24, previous=base), SETTINGS)
    assert index.particles == 24 and len(index.blocks) == 3 and index.total == ""
    # the first update refines every block (a refinement cycle), nothing new yet
    first = await stream.update(base + 1, dataset.inputs(active, nz=24), SETTINGS, full_star=True)
    assert first is not None and first.new_particles == 0 and first.revisited_particles == 24
    assert first.star_path is not None and len(read_star(first.star_path)) == 24
    assert first.star_rows == 24 and first.cursor_position == 24
    check_state(dataset, stream, active)
    # fewer new particles than the batch: no update
    assert await stream.update(base + 2, dataset.inputs(active, nz=30), SETTINGS) is None
    second = await stream.update(base + 2, dataset.inputs(active, nz=41), SETTINGS)
    assert second is not None
    assert second.new_particles == 17 and second.blocks_revisited == 1
    assert second.star_path is None  # the full star only when due
    assert (dataset.folder / f"cycle_{base + 2}.mrc").is_file()
    assert not (dataset.folder / f"cycle_{base + 2}.star").exists()
    assert sum(second.members) == 41
    check_state(dataset, stream, active)
    summary = stream.summary()
    assert summary is not None and summary.cycle == base + 2 and summary.particles == 41
    assert summary.members == second.members and summary.cursor_position == 41
    # the first update refined every block (pass 1 ended); pass 2 holds the new blocks and
    # the one revisited, not the other two first blocks
    assert summary.pass_number == 2 and summary.pass_done == summary.blocks - 2
    star = await stream.write_full_star(active)  # e.g. when streaming stops
    assert star is not None and star.cycle == base + 2 and star.rows == 41
    assert star.path == dataset.folder / f"cycle_{base + 2}.star"
    assert np.array_equal(read_star(star.path)["position"], np.arange(1, 42))
    again = await stream.write_full_star(active)  # already written: returned as it is
    assert again == star
    jobs = [r for r in runs(fake_state) if r["program"] == "refine2d"]
    last = jobs[-4:]  # the new blocks' and the revisit's jobs
    assert all(r["answers"][21] == "No" for r in last)  # no auto-centre while streaming
    assert all(r["answers"][22] == "Yes" for r in last)  # dump mode
    merges = [r for r in runs(fake_state) if r["program"] == "merge2d"]
    assert merges[-1]["answers"][2] == "1"  # merge2d reads one dump, the running total
    assert any("class frame drift" in line for line in logs)


async def test_inactive_particles_leave_and_reprocessed_ones_enter_as_new_rows(
    tmp_path: Path, fake_state: Path
) -> None:
    dataset = make_dataset(tmp_path / "session", count=60)
    runner = make_runner(dataset)
    active = np.arange(1, 61)
    base = await classify(dataset, runner, active, nz=32)
    stream = StreamRunner(runner)
    await stream.start(base, dataset.inputs(active, nz=32, previous=base), SETTINGS)
    await stream.update(base + 1, dataset.inputs(active, nz=32), SETTINGS)
    # a micrograph (positions 3-6) is reprocessed: the old range goes inactive, its particles
    # come back as new positions at the end of the stack
    active = np.r_[1:3, 7:61]
    settings = SETTINGS.with_changes(stream_revisit=99)  # revisit every block
    result = await stream.update(base + 2, dataset.inputs(active, nz=44), settings)
    assert result is not None and result.new_particles == 12
    check_state(dataset, stream, active)
    index = stream.state()
    assert index is not None and index.particles == 40


async def test_dumps_naming_other_classes_are_refused_before_merge2d(
    tmp_path: Path, fake_state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dataset = make_dataset(tmp_path / "session", count=40)
    runner = make_runner(dataset)
    active = np.arange(1, 41)
    # 24 particles in 30 classes: the fake's refinement leaves classes empty
    many = SETTINGS.with_changes(class_number=30)
    base = await classify(dataset, runner, active, nz=24, settings=many)
    stream = StreamRunner(runner)
    await stream.start(base, dataset.inputs(active, nz=24, previous=base), SETTINGS)
    await stream.update(base + 1, dataset.inputs(active, nz=24), SETTINGS)
    averages = mrcfile.read(dataset.folder / f"cycle_{base + 1}.mrc")
    assert not averages.reshape(30, -1).any(axis=1).all()
    before = (stream_folder(dataset.folder) / "index.json").read_text()
    merges = len([r for r in runs(fake_state) if r["program"] == "merge2d"])
    # one job's dump names an empty class instead of a searched one: the same count
    monkeypatch.setenv("FAKE_FAIL_MODE", "wrongset")
    monkeypatch.setenv("FAKE_FAIL_FIRST", "25")
    # the new block's first job starts at position 25
    with pytest.raises(CycleFailed, match="different sets of non-empty classes"):
        await stream.update(base + 2, dataset.inputs(active, nz=40), SETTINGS)
    assert len([r for r in runs(fake_state) if r["program"] == "merge2d"]) == merges
    assert (stream_folder(dataset.folder) / "index.json").read_text() == before
    assert not (dataset.folder / f"cycle_{base + 2}.mrc").exists()
    monkeypatch.delenv("FAKE_FAIL_MODE")
    monkeypatch.delenv("FAKE_FAIL_FIRST")
    assert await stream.update(base + 2, dataset.inputs(active, nz=40), SETTINGS) is not None
    check_state(dataset, stream, active)


async def test_changed_settings_need_a_new_stream(tmp_path: Path, fake_state: Path) -> None:
    dataset = make_dataset(tmp_path / "session", count=40)
    runner = make_runner(dataset)
    active = np.arange(1, 41)
    base = await classify(dataset, runner, active, nz=24)
    stream = StreamRunner(runner)
    with pytest.raises(StreamError, match="no stream"):
        await stream.update(base + 1, dataset.inputs(active), SETTINGS)
    await stream.start(base, dataset.inputs(active, nz=24, previous=base), SETTINGS)
    with pytest.raises(StreamError, match="settings changed"):
        await stream.update(base + 1, dataset.inputs(active), SETTINGS.with_changes(mask_radius=20))


async def test_fusing_blocks_keeps_the_dumps_within_the_budget(
    tmp_path: Path, fake_state: Path
) -> None:
    dataset = make_dataset(tmp_path / "session", count=80)
    logs: list[str] = []
    runner = make_runner(dataset, logs)
    active = np.arange(1, 81)
    base = await classify(dataset, runner, active, nz=24)
    stream = StreamRunner(runner)
    await stream.start(base, dataset.inputs(active, nz=24, previous=base), SETTINGS)
    first = await stream.update(base + 1, dataset.inputs(active, nz=24), SETTINGS)
    assert first is not None
    one_block = first.dump_bytes / 3
    budget = SETTINGS.with_changes(stream_dump_gb=4.5 * one_block / 1e9)
    number = base + 2
    for nz in (40, 56, 72, 80):
        result = await stream.update(number, dataset.inputs(active, nz=nz), budget, force=True)
        assert result is not None
        assert result.dump_bytes <= 4.5 * one_block + 1
        check_state(dataset, stream, active)
        number += 1
    assert any("fused streaming blocks" in line for line in logs)


async def test_the_index_names_every_file_and_orphans_are_removed(
    tmp_path: Path, fake_state: Path
) -> None:
    dataset = make_dataset(tmp_path / "session", count=40)
    runner = make_runner(dataset)
    active = np.arange(1, 41)
    base = await classify(dataset, runner, active, nz=24)
    stream = StreamRunner(runner)
    await stream.start(base, dataset.inputs(active, nz=24, previous=base), SETTINGS)
    await stream.update(base + 1, dataset.inputs(active, nz=24), SETTINGS)
    folder = stream_folder(dataset.folder)
    (folder / "blocks" / "b9_v99_1.dat").write_bytes(b"left by a killed update")
    (folder / "total_v99.npz").write_bytes(b"x")
    (dataset.folder / f"cycle_{base + 1}.mrc").unlink()
    removed = stream.recover()
    assert sorted(p.name for p in removed) == ["b9_v99_1.dat", "total_v99.npz"]
    assert (dataset.folder / f"cycle_{base + 1}.mrc").is_file()  # published again
    index = json.loads((folder / "index.json").read_text())
    assert index["cycle"] == base + 1
    data = mrcfile.read(dataset.folder / f"cycle_{base + 1}.mrc")
    assert data.shape[0] == 4
    check_state(dataset, stream, active)


CHILD = Path(__file__).with_name("stream_child.py")


def block_invariants(folder: Path) -> int:
    """The committed state counts every particle of every block once: the fake's dumps count
    particles and sum their positions mod 97. Returns the updates done."""
    stream_dir = stream_folder(folder)
    index = json.loads((stream_dir / "index.json").read_text())
    positions = [
        read_star(stream_dir / b["star"])["position"] for b in index["blocks"] if b["star"]
    ]
    rows = np.concatenate(positions) if positions else np.zeros(0, np.int64)
    assert len(rows) == len(np.unique(rows)), "a particle in two blocks"
    if index["total"]:
        total = read_total(stream_dir / index["total"])
        assert total.processed == len(rows)
        assert total.sums[:, 0, 0].real.sum() == pytest.approx(len(rows))
        assert total.sums[:, 0, 1].real.sum() == pytest.approx(checksum(rows))
    for name in [b["star"] for b in index["blocks"]] + [index["stats"], index["averages"]]:
        assert not name or (stream_dir / name).is_file(), f"{name} missing"
    return int(index["updates"])


async def test_a_sigkill_at_random_points_loses_or_doubles_no_particle(
    tmp_path: Path, fake_state: Path
) -> None:
    import os
    import random
    import signal
    import subprocess
    import sys
    import time

    from live2d_tui.classify.procs import end_orphans

    dataset = make_dataset(tmp_path / "session", count=80)
    runner = make_runner(dataset)
    await classify(dataset, runner, np.arange(1, 81), nz=24)  # cycles 0 and 1
    updates = 12
    env = {**os.environ, "FAKE_STATE": str(fake_state), "FAKE_SLEEP": "0.4"}
    rng = random.Random(20)
    kills = 0
    for attempt in range(7):  # six children killed at random moments, then one left to finish
        started = len(runs(fake_state))
        log = (fake_state / "child.log").open("ab")
        child = subprocess.Popen(
            [sys.executable, str(CHILD), str(dataset.folder), str(updates)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            if attempt < 6:
                # a random moment: after a random number of its program runs started, plus a
                # random delay (a job running, merge2d, the sums, the commit...)
                target = started + rng.randint(1, 4)
                deadline = time.monotonic() + 120
                while len(runs(fake_state)) < target and child.poll() is None:
                    assert time.monotonic() < deadline, "the child made no progress"
                    time.sleep(0.02)
                time.sleep(rng.uniform(0.0, 0.5))
            child.wait(timeout=0.01 if attempt < 6 else 300)
        except subprocess.TimeoutExpired:
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=30)
            kills += 1
        finally:
            log.close()
        if child.returncode == 0:
            break
        assert child.returncode == -signal.SIGKILL, (fake_state / "child.log").read_text()[-3000:]
        # what a restart finds: the last committed state, whole
        if (stream_folder(dataset.folder) / "index.json").exists():
            end_orphans(dataset.folder, lambda line: None, grace=1.0)
            block_invariants(dataset.folder)
        time.sleep(0.05)
    assert child.returncode == 0 and kills >= 5
    assert block_invariants(dataset.folder) == updates
    stream = StreamRunner(make_runner(dataset))
    stream.recover()
    check_state_after_churn(dataset, stream)


def check_state_after_churn(dataset: Dataset, stream: StreamRunner) -> None:
    index = stream.state()
    assert index is not None
    folder = stream_folder(dataset.folder)
    names = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert names == index.files() | {"index.json"}
    for number in range(index.base_cycle + 1, index.cycle + 1):
        assert (dataset.folder / f"cycle_{number}.mrc").is_file()
    assert stream.check_total() < 1e-9


async def test_an_abort_at_random_moments_leaves_the_previous_state(
    tmp_path: Path, fake_state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio
    import random

    monkeypatch.setenv("FAKE_SLEEP", "0.3")
    dataset = make_dataset(tmp_path / "session", count=60)
    runner = make_runner(dataset)
    active = np.arange(1, 61)
    base = await classify(dataset, runner, active, nz=24)
    stream = StreamRunner(runner)
    await stream.start(base, dataset.inputs(active, nz=24, previous=base), SETTINGS)
    await stream.update(base + 1, dataset.inputs(active, nz=24), SETTINGS)
    folder = stream_folder(dataset.folder)
    rng = random.Random(7)
    for _ in range(4):
        before = (folder / "index.json").read_text()
        task = asyncio.create_task(stream.update(base + 2, dataset.inputs(active, nz=40), SETTINGS))
        await asyncio.sleep(rng.uniform(0.05, 1.5))
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            check_state(dataset, stream, active)
            if (folder / "index.json").read_text() == before:
                assert not (dataset.folder / f"cycle_{base + 2}.mrc").exists()
                continue
            # aborted during the commit: the update completed first
            assert (dataset.folder / f"cycle_{base + 2}.mrc").is_file()
        break  # it finished: the state is the new one
    result = await stream.update(stream.state().cycle + 1, dataset.inputs(active, nz=60), SETTINGS)  # type: ignore[union-attr]
    assert result is not None
    check_state(dataset, stream, active)
