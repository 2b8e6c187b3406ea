"""``live2d quality`` and the background estimate the supervisor starts after each cycle."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from live2d_tui.config import Config
from live2d_tui.events import ClassQualityReady, Event
from live2d_tui.results import quality
from live2d_tui.results.selection import Selection, read_selection, write_selection
from live2d_tui.supervisor.results import quality_argv

from .conftest import JOB, SERVER


def live2d(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "live2d_tui", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


def test_quality_command_prints_computes_and_caches(session_copy: tuple[Path, Path]) -> None:
    _, out = session_copy
    for stale in out.glob("cycle_*.quality.json"):
        stale.unlink()
    result = live2d("quality", str(out))
    assert result.returncode == 0, result.stderr
    assert "cycle 3: " in result.stdout and "half-set consistency estimate" in result.stdout
    assert "at most 1,000 particles per class" in result.stdout
    assert len(result.stdout.splitlines()) == 3 + 4  # header lines and the 4 classes
    cached = quality.read_cached(out, 3, star=out / "cycle_3.star", classes=out / "cycle_3.mrc")
    assert cached is not None and len(cached.classes) == 4
    assert sum(c.members for c in cached.classes) == cached.particles
    again = live2d("quality", str(out), "--cycle", "3", "--json")
    assert json.loads(again.stdout) == cached.to_dict()
    missing = live2d("quality", str(out), "--cycle", "9")
    assert missing.returncode == 2 and "no completed cycle 9" in missing.stderr
    nothing = live2d("quality", str(out.parent))
    assert nothing.returncode == 2 and "not a live2d output folder" in nothing.stderr


def test_after_cycle_runs_at_idle_priority_and_carries_the_selection(
    session_copy: tuple[Path, Path],
) -> None:
    _, out = session_copy
    write_selection(out, Selection(cycle=2).with_marks({1: "good", 3: "bad"}))
    (out / "cycle_3.selection.json").unlink(missing_ok=True)
    argv = quality_argv(out, 3)
    assert argv[-1] == "--after-cycle"
    result = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    carried = read_selection(out, 3)
    assert carried is not None and carried.carried_from == 2 and carried.revision == 0
    assert set(carried.marks) == {1, 3}
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import os; from live2d_tui.commands.quality import lowest_priority; "
            "lowest_priority(); print(os.getpriority(os.PRIO_PROCESS, 0), "
            "os.sched_getscheduler(0) == os.SCHED_IDLE)",
        ],
        capture_output=True,
        text=True,
    )
    assert probe.stdout.split() == ["19", "True"]


async def test_supervisor_estimates_each_cycle_in_the_background(
    make_warp_session,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    from live2d_tui.supervisor import Supervisor

    warp = make_warp_session(micrographs=4, particles_per_micrograph=40, box=64, seed=1)
    out = tmp_path / "out"
    job = JOB.with_changes(run_count_startup=1, run_count_refine=1)
    sup = Supervisor(Config(server=SERVER, job=job), warp_folder=warp, output_folder=out)
    ready: list[ClassQualityReady] = []
    last = asyncio.Event()

    def on_event(event: Event) -> None:
        if isinstance(event, ClassQualityReady):
            ready.append(event)
            if event.number == 2:
                last.set()

    sup.bus.subscribe(on_event)
    await sup.start()
    try:
        await sup.ingest_now(settle=True)
        await sup.start_job_now(continue_automatic=False)
        await asyncio.wait_for(last.wait(), 240)
    finally:
        await sup.close()
    assert all(e.success for e in ready), ready
    # the newest cycle always gets its estimate; one finishing meanwhile may be skipped
    assert ready[-1].number == 2 and [e.number for e in ready] == sorted({e.number for e in ready})
    assert quality.read_cached(out, 2) is not None
    assert (out / "cycles" / "cycle_2" / "quality.log").is_file()
    # nothing of the estimate outlives the supervisor
    marker = f"LIVE2D_OUTPUT_FOLDER={out.resolve()}".encode()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                assert marker not in (entry / "environ").read_bytes()
            except OSError:
                continue


async def test_worker_order_newest_finished_and_asked_first(tmp_path: Path) -> None:
    """The queue's order, without processes: a view's request goes first, and of the cycles
    finished meanwhile only the newest waits."""
    from live2d_tui.events import CycleFinished, EventBus
    from live2d_tui.supervisor.context import SupervisorContext
    from live2d_tui.supervisor.results import ResultsWorker

    worker = ResultsWorker(SupervisorContext(Config(server=SERVER, job=JOB), EventBus()))
    worker.output_folder = tmp_path
    for number in (2, 4, 5, 6, 7):
        (tmp_path / f"cycle_{number}.star").touch()
    ran: list[int] = []

    async def fake_run(folder: Path, cycle: int) -> None:
        ran.append(cycle)
        await asyncio.sleep(0)

    worker._run = fake_run  # type: ignore[method-assign]
    worker.ctx.bus.publish(CycleFinished(number=4, success=True))
    worker.ctx.bus.publish(CycleFinished(number=5, success=True))
    worker.ctx.bus.publish(CycleFinished(number=6, success=False))
    worker.request(2)
    worker.request(2)
    await asyncio.sleep(0.05)
    assert ran == [2, 5]
    await worker.close()
    worker.ctx.bus.publish(CycleFinished(number=7, success=True))
    await asyncio.sleep(0.05)
    assert ran == [2, 5]


async def test_a_streaming_update_without_its_full_star_gets_no_estimate_and_no_warning(
    tmp_path: Path,
) -> None:
    """A streaming update that published class averages only has no star to re-average from:
    it is skipped quietly (no process, no warning in the session log), the next one runs."""
    from live2d_tui.events import ClassQualityReady, CycleFinished, EventBus
    from live2d_tui.supervisor.context import SupervisorContext
    from live2d_tui.supervisor.results import NO_FULL_STAR, ResultsWorker

    lines: list[str] = []
    ctx = SupervisorContext(Config(server=SERVER, job=JOB), EventBus())
    ctx.log = lambda line, level="info": lines.append(line)  # type: ignore[method-assign]
    worker = ResultsWorker(ctx)
    worker.output_folder = tmp_path
    (tmp_path / "cycle_6.star").touch()
    ready: list[ClassQualityReady] = []
    ctx.bus.subscribe(lambda e: ready.append(e) if isinstance(e, ClassQualityReady) else None)
    ran: list[int] = []

    async def fake_run(folder: Path, cycle: int) -> None:
        ran.append(cycle)

    worker._run = fake_run  # type: ignore[method-assign]
    ctx.bus.publish(CycleFinished(number=5, success=True))
    await asyncio.sleep(0.05)
    ctx.bus.publish(CycleFinished(number=6, success=True))
    await asyncio.sleep(0.05)
    await worker.close()
    assert ran == [6]
    assert ready == [ClassQualityReady(5, False, NO_FULL_STAR)]
    assert lines == []


async def test_closing_while_the_log_opens_leaves_no_open_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The app closed while the worker's thread was opening a cycle's quality.log: the file is
    closed when the thread is done (it leaked, and pytest reported an unclosed file)."""
    import threading
    from typing import IO

    from live2d_tui.events import CycleFinished, EventBus
    from live2d_tui.supervisor.context import SupervisorContext
    from live2d_tui.supervisor.results import ResultsWorker

    opened: list[IO[bytes]] = []
    entered = threading.Event()
    release = threading.Event()

    def slow_open(folder: Path, cycle: int) -> tuple[IO[bytes], str]:
        entered.set()
        release.wait(5)
        handle = open(folder / "quality.log", "wb")  # noqa: SIM115 (the worker closes it)
        opened.append(handle)
        return handle, str(folder)

    monkeypatch.setattr(ResultsWorker, "_open_log", staticmethod(slow_open))
    worker = ResultsWorker(SupervisorContext(Config(server=SERVER, job=JOB), EventBus()))
    worker.output_folder = tmp_path
    (tmp_path / "cycle_3.star").touch()
    worker.ctx.bus.publish(CycleFinished(number=3, success=True))
    assert await asyncio.to_thread(entered.wait, 5)
    closing = asyncio.ensure_future(worker.close())
    await asyncio.sleep(0.05)
    release.set()
    await closing
    for _ in range(100):
        if opened and opened[0].closed:
            break
        await asyncio.sleep(0.02)
    assert opened and opened[0].closed
