"""SIGKILL of the runner's process, then a restart: end_orphans leaves no program run behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from live2d_tui.classify.procs import (
    ProcessRegistry,
    RunningProgram,
    end_orphans,
    read_stat,
    session_members,
)
from live2d_tui.classify.runner import CycleRunner
from live2d_tui.classify.schedule import plan_job

from .conftest import Dataset, fake_programs
from .test_runner import SETTINGS, runs

CHILD = Path(__file__).with_name("runner_child.py")


def wait_running(
    state: Path, count: int, child: subprocess.Popen[bytes], timeout: float = 60.0
) -> None:
    counter = state / "counter.json"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and child.poll() is None:
        if counter.exists():
            try:
                if json.loads(counter.read_text())["running"] >= count:
                    return
            except ValueError:
                pass
        time.sleep(0.05)
    pytest.fail(f"the jobs did not start (runner exit status {child.poll()})")


async def seed_cycle(dataset: Dataset) -> None:
    runner = CycleRunner(dataset.folder, fake_programs(), pool_size=1, jobs_per_cycle=1)
    plan = plan_job(SETTINGS, last_cycle_number=None)
    await runner.run_cycle(plan.cycles[0], dataset.inputs(), SETTINGS)


def start_child(dataset: Dataset, state: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "FAKE_STATE": str(state), "FAKE_SLEEP": "300"}
    with (state / "child.log").open("wb") as log:
        return subprocess.Popen(
            [sys.executable, str(CHILD), str(dataset.folder), str(dataset.count), "2", "3"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


@pytest.mark.parametrize("lose_registry", [False, True])
async def test_sigkilled_runner_leaves_no_process_after_restart(
    dataset: Dataset, fake_state: Path, lose_registry: bool
) -> None:
    await seed_cycle(dataset)
    (fake_state / "runs.jsonl").unlink()
    child = start_child(dataset, fake_state)
    try:
        wait_running(fake_state, 2, child)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        jobs = [r for r in runs(fake_state) if r["program"] == "refine2d"]
        assert len(jobs) == 2
        sids = [int(r["sid"]) for r in jobs]  # type: ignore[call-overload]
        assert all(session_members(sid) for sid in sids), "jobs should survive their supervisor"
        registry = ProcessRegistry(dataset.folder)
        assert {job.pid for job in registry.load()} == set(sids)
        if lose_registry:  # the marker in the program runs' environment still finds them
            registry.clear()
        lines: list[str] = []
        ended = end_orphans(dataset.folder, lines.append, grace=2.0)
        assert ended == 2
        assert any("Ending orphaned program run process" in line for line in lines)
        for sid in sids:
            assert session_members(sid) == []
        assert registry.load() == []
        assert end_orphans(dataset.folder, lines.append) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_a_recycled_pid_is_left_alone(tmp_path: Path) -> None:
    me = read_stat(os.getpid())
    assert me is not None
    registry = ProcessRegistry(tmp_path)
    registry.path.parent.mkdir(parents=True)
    stale = RunningProgram(pid=os.getpid(), start_ticks=me.start_ticks + 1, name="old", started=0.0)
    registry.path.write_text(
        json.dumps(
            [
                stale.__dict__
                if hasattr(stale, "__dict__")
                else {
                    "pid": stale.pid,
                    "start_ticks": stale.start_ticks,
                    "name": stale.name,
                    "started": 0.0,
                }
            ]
        )
    )
    assert end_orphans(tmp_path, lambda line: None, grace=0.5) == 0
    assert read_stat(os.getpid()) is not None


def test_a_damaged_registry_counts_as_empty(tmp_path: Path) -> None:
    registry = ProcessRegistry(tmp_path)
    registry.path.parent.mkdir(parents=True)
    registry.path.write_text("{not json")
    assert registry.load() == []
    assert end_orphans(tmp_path, lambda line: None) == 0


def test_stale_scratch_is_removed_logs_are_kept(tmp_path: Path) -> None:
    folder = tmp_path / "cycles" / "cycle_3"
    folder.mkdir(parents=True)
    names = [
        "dump_a1b2c3_1.dat",
        "dump_a1b2c3_.dat",
        "part_a1b2c3_12.star",
        "input_a1b2c3.star",
        "classes_a1b2c3.mrc",
        "joined_a1b2c3.star",  # the joined star between the join and the install
    ]
    keep = ["refine2d_1_a1b2c3_try1.log", "notes.txt", "dump_final.dat"]
    for name in names + keep:
        (folder / name).write_text("x")
    assert end_orphans(tmp_path, lambda line: None) == 0
    assert sorted(p.name for p in folder.iterdir()) == sorted(keep)
