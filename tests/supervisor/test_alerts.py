"""Each alert fires once on a session that produces its condition, and ends when it ends.

Real supervisors on simulated Warp sessions: the simulator paused for a stall, a stretch of
rejected movies, the strict fake refine2d (failing, or busy for a while) behind a cisTEM-style
pair of wrapper programs, a stand-in for the free-space probe; and a real hook program.
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from live2d_tui import disk
from live2d_tui.config import Config
from live2d_tui.events import (
    AlertCleared,
    AlertKind,
    AlertRaised,
    CycleFinished,
    CycleStarted,
    Event,
    HealthUpdated,
    JobFinished,
    SessionStatus,
    StatusChanged,
)
from live2d_tui.simulate import SimulationOptions, simulate_session
from live2d_tui.supervisor import Supervisor, alerts
from live2d_tui.supervisor.sessionlog import LOG_NAME

from .conftest import TINY_JOB, Recorder, tiny_server

FAKE = Path(__file__).parents[1] / "classify" / "fake_cistem.py"
"""The strict fake refine2d/merge2d of the cycle tests."""

NO_JOBS = TINY_JOB.with_changes(particle_count_initial=10_000_000)
"""Automatic jobs on, but the first job never triggers: only Warp's side is watched."""


def raised(rec: Recorder, kind: AlertKind) -> list[AlertRaised]:
    return [e for e in rec.of(AlertRaised) if e.alert.kind is kind]


def cleared(rec: Recorder, kind: AlertKind) -> list[AlertCleared]:
    return [e for e in rec.of(AlertCleared) if e.alert.kind is kind]


def is_raised(kind: AlertKind):  # type: ignore[no-untyped-def]
    return lambda e: isinstance(e, AlertRaised) and e.alert.kind is kind


def is_cleared(kind: AlertKind):  # type: ignore[no-untyped-def]
    return lambda e: isinstance(e, AlertCleared) and e.alert.kind is kind


@pytest.fixture
def live_warp(tmp_path: Path) -> Iterator[tuple[Path, threading.Event, dict[str, object]]]:
    """A factory-by-fixture: call ``start(**options)`` to run a live simulated session."""
    stop, pause = threading.Event(), threading.Event()
    threads: list[threading.Thread] = []
    folder = tmp_path / "warp"

    def start(**options: object) -> None:
        base: dict[str, object] = {
            "micrographs": 400,
            "particles_per_micrograph": 6,
            "box": 32,
            "diameter": 60.0,
            "seed": 2,
            "rate": 0.1,
        }
        opts = SimulationOptions(**{**base, **options})  # type: ignore[arg-type]
        thread = threading.Thread(
            target=simulate_session, args=(folder, opts), kwargs={"stop": stop, "pause": pause}
        )
        thread.start()
        threads.append(thread)
        while not (folder / "previous.settings").exists():
            threading.Event().wait(0.02)

    try:
        yield folder, pause, {"start": start}
    finally:
        stop.set()
        pause.clear()
        for thread in threads:
            thread.join(60)


async def wait_movies(rec: Recorder, count: int) -> None:
    await rec.wait_new(lambda e: isinstance(e, HealthUpdated) and e.health.micrographs >= count)


async def test_the_tab_has_the_tables_counts_once_ingest_has_read_it(tmp_path: Path) -> None:
    # an hour between periodic looks: only the ingest pass can bring the counts to the tab (the
    # scan at the start may come before ingest has read the particle table)
    folder = tmp_path / "warp"
    simulate_session(folder, SimulationOptions(micrographs=6, box=32, diameter=60.0, seed=3))
    config = Config(server=tiny_server(interval=3600.0), job=NO_JOBS)
    sup = Supervisor(config, warp_folder=folder, output_folder=tmp_path / "out")
    rec = Recorder(sup.bus)
    await sup.start()
    try:
        counts = await sup.ingest_now(settle=True)
        assert counts is not None and counts.particles_active > 0
        update = await rec.wait(
            lambda e: isinstance(e, HealthUpdated) and e.health.particles > 0, timeout=30
        )
        assert isinstance(update, HealthUpdated)
        assert update.health.particles == counts.particles_total
        assert update.health.table_name.startswith("goodparticles")
    finally:
        await sup.close()


async def test_warp_stall_fires_once_and_ends_when_warp_resumes(
    tmp_path: Path, live_warp: tuple[Path, threading.Event, dict[str, object]]
) -> None:
    folder, pause, control = live_warp
    control["start"]()  # type: ignore[operator]
    config = Config(server=tiny_server(stall_minutes=0.05), job=NO_JOBS)  # 3 s
    sup = Supervisor(config, warp_folder=folder, output_folder=tmp_path / "out")
    rec = Recorder(sup.bus)
    await sup.start()
    try:
        await sup.start_automatic()
        await wait_movies(rec, 5)
        await wait_movies(rec, 15)  # movies flow: no alert
        assert raised(rec, AlertKind.WARP_STALLED) == []
        pause.set()  # Warp stops
        first = await rec.wait(is_raised(AlertKind.WARP_STALLED), timeout=60)
        assert isinstance(first, AlertRaised)
        assert first.alert.text.startswith("Warp has stalled: no new movie for ")
        assert raised(rec, AlertKind.ALL_REJECTED) == []  # a stall, not a rejection
        await asyncio.sleep(1.0)  # still stalled: no second alert
        pause.clear()  # Warp resumes
        end = await rec.wait(is_cleared(AlertKind.WARP_STALLED), timeout=60)
        assert isinstance(end, AlertCleared) and end.notify
        assert end.text.startswith("Warp resumed: ")
        assert len(raised(rec, AlertKind.WARP_STALLED)) == 1
        assert sup.alerts == []
    finally:
        await sup.close()
    log = (tmp_path / "out" / LOG_NAME).read_text()
    assert "ALERT: Warp has stalled" in log and "Alert ended: Warp resumed" in log


async def test_every_new_movie_rejected_is_not_a_stall(
    tmp_path: Path, live_warp: tuple[Path, threading.Event, dict[str, object]]
) -> None:
    folder, _, control = live_warp
    # movies 3–8 fail Warp's filter (about 9 s of thick ice), then movies are kept again; a movie
    # every 1.5 s lets ingest accept each rewrite of the table (stable for a second)
    control["start"](rate=1.5, rejected_from=3, rejected_until=9)  # type: ignore[operator]
    config = Config(server=tiny_server(stall_minutes=0.06), job=NO_JOBS)
    sup = Supervisor(config, warp_folder=folder, output_folder=tmp_path / "out")
    rec = Recorder(sup.bus)
    await sup.start()
    try:
        await sup.start_automatic()
        first = await rec.wait(is_raised(AlertKind.ALL_REJECTED), timeout=90)
        assert isinstance(first, AlertRaised)
        assert first.alert.text.startswith("Every new movie is rejected: ")
        assert "none kept in goodparticles_" in first.alert.text
        end = await rec.wait(is_cleared(AlertKind.ALL_REJECTED), timeout=90)
        assert isinstance(end, AlertCleared) and end.notify
        assert end.text.startswith("Movies are kept again: ")
        assert len(raised(rec, AlertKind.ALL_REJECTED)) == 1
        assert raised(rec, AlertKind.WARP_STALLED) == []
        health = sup.health
        assert health is not None and any(p > 50 for p in health.rejected_percent)
    finally:
        await sup.close()


async def test_alerts_need_automatic_jobs(
    tmp_path: Path, live_warp: tuple[Path, threading.Event, dict[str, object]]
) -> None:
    folder, pause, control = live_warp
    control["start"]()  # type: ignore[operator]
    config = Config(server=tiny_server(stall_minutes=0.02), job=NO_JOBS)
    sup = Supervisor(config, warp_folder=folder, output_folder=tmp_path / "out")
    rec = Recorder(sup.bus)
    await sup.start()
    try:
        await wait_movies(rec, 3)
        pause.set()
        await asyncio.sleep(3.0)  # far beyond the 1.2 s stall time
        assert rec.of(AlertRaised) == []  # automatic jobs are off: nothing is judged
        await sup.start_automatic()
        await rec.wait(is_raised(AlertKind.WARP_STALLED), timeout=60)
        await sup.stop()  # automatic jobs off: the alert ends quietly
        end = await rec.wait(is_cleared(AlertKind.WARP_STALLED), timeout=30)
        assert isinstance(end, AlertCleared) and not end.notify
    finally:
        await sup.close()


async def test_disk_below_the_margin_fires_once_and_ends_with_room(
    warp_session: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    free = {"bytes": 100e9, "looks": 0}

    def probe(folder: Path) -> int:
        free["looks"] += 1
        return int(free["bytes"])

    monkeypatch.setattr(disk, "free_bytes", probe)

    async def looks(count: int) -> None:
        target = free["looks"] + count
        while free["looks"] < target:
            await asyncio.sleep(0.05)

    config = Config(server=tiny_server(disk_alert_gb=5.0), job=NO_JOBS)
    sup = Supervisor(config, warp_folder=warp_session, output_folder=tmp_path / "out")
    rec = Recorder(sup.bus)
    await sup.start()
    try:
        await looks(3)
        assert rec.of(AlertRaised) == []
        free["bytes"] = 3.2e9
        first = await rec.wait(is_raised(AlertKind.DISK_LOW), timeout=30)
        assert isinstance(first, AlertRaised)
        assert first.alert.text.startswith("Disk nearly full: 3.2 GB free")
        free["bytes"] = 5.1e9  # above the margin, within its 5 %: no flapping
        await looks(5)
        assert cleared(rec, AlertKind.DISK_LOW) == []
        free["bytes"] = 6e9
        end = await rec.wait(is_cleared(AlertKind.DISK_LOW), timeout=30)
        assert isinstance(end, AlertCleared) and end.notify and "6.0 GB free" in end.text
        assert len(raised(rec, AlertKind.DISK_LOW)) == 1
    finally:
        await sup.close()


# --------------------------------------------------------------------------- jobs and cycles


def fake_pair(folder: Path, flags: Path) -> tuple[str, str]:
    """A refine2d/merge2d pair running the strict fake: refine2d fails while ``flags/fail``
    exists, and works ``flags/spin`` CPU seconds per run while that exists."""
    folder.mkdir()
    flags.mkdir()
    paths = []
    for name in ("refine2d", "merge2d"):
        path = folder / name
        path.write_text(
            "#!/bin/sh\n"
            f'if [ -f "{flags}/fail" ]; then export FAKE_FAIL_FIRST=1 FAKE_FAIL_MODE=always; fi\n'
            f'if [ -f "{flags}/spin" ]; then export FAKE_SPIN="$(cat "{flags}/spin")"; fi\n'
            f'exec "{sys.executable}" "{FAKE}" {name}\n'
        )
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
        paths.append(str(path))
    return paths[0], paths[1]


HOOK = """\
import json, os, sys, time
alert = json.load(sys.stdin)
with open(sys.argv[1], "a") as out:
    out.write(json.dumps(alert) + "\\n")
if alert["kind"] == "job_failed" and alert["event"] == "raised":
    with open(sys.argv[2], "w") as pid:
        pid.write(str(os.getpid()))
    time.sleep(600)  # a hook that hangs
sys.exit(1)  # and one that fails
"""


async def test_job_alerts_and_a_hook_that_hangs_or_fails_delays_nothing(
    warp_session: Path, tmp_path: Path
) -> None:
    flags = tmp_path / "flags"
    refine, merge = fake_pair(tmp_path / "bin", flags)
    (flags / "fail").touch()
    script = tmp_path / "hook.py"
    script.write_text(HOOK)
    received, pid_file = tmp_path / "hook.jsonl", tmp_path / "hook.pid"
    server = tiny_server(
        engine="cistem",
        refine2d=refine,
        merge2d=merge,
        alert_hook=[sys.executable, str(script), str(received), str(pid_file)],
        alert_hook_timeout=300.0,
    )
    sup = Supervisor(Config(server=server, job=TINY_JOB), warp_folder=warp_session)
    rec = Recorder(sup.bus)
    hook_alive_at_job_end: list[bool] = []

    def watch(event: Event) -> None:
        if isinstance(event, JobFinished) and event.success:
            pid = int(pid_file.read_text())
            hook_alive_at_job_end.append(Path(f"/proc/{pid}").exists())

    sup.bus.subscribe(watch)
    await sup.start()
    try:
        await sup.start_automatic()  # three tries, then automatic jobs stop: failed
        failed = await rec.wait(is_raised(AlertKind.JOB_FAILED), timeout=120)
        assert isinstance(failed, AlertRaised)
        assert failed.alert.text.startswith("Job failed after 3 attempts: ")
        assert sup.status is SessionStatus.FAILED
        for _ in range(200):  # the hook has received it and hangs
            if pid_file.exists() and pid_file.read_text():
                break
            await asyncio.sleep(0.05)
        (flags / "fail").unlink()
        await sup.start_job_now(continue_automatic=False)
        end = await rec.wait(is_cleared(AlertKind.JOB_FAILED), timeout=30)
        assert isinstance(end, AlertCleared) and not end.notify
        done = await rec.wait(is_raised(AlertKind.JOB_FINISHED), timeout=120)
        assert isinstance(done, AlertRaised) and "job finished after cycle 3" in done.alert.text
        # every cycle of the second job ran while the first alert's hook was still hanging
        assert hook_alive_at_job_end == [True]
        assert len([e for e in rec.of(CycleFinished) if e.success]) == 4
        assert len(raised(rec, AlertKind.JOB_FAILED)) == 1
        # stopping a job: the finished notice ends, a stopped one comes
        await sup.start_job_now(continue_automatic=False)
        await rec.wait_new(lambda e: isinstance(e, CycleStarted))
        await sup.stop()
        stopped = await rec.wait(is_raised(AlertKind.JOB_STOPPED), timeout=60)
        assert isinstance(stopped, AlertRaised) and "job stopped after cycle" in stopped.alert.text
        assert len(cleared(rec, AlertKind.JOB_FINISHED)) == 1
        for _ in range(200):  # the hooks of the later alerts ran (and failed) meanwhile
            if len(received.read_text().splitlines()) >= 5:
                break
            await asyncio.sleep(0.05)
    finally:
        await sup.close()
    pid = int(pid_file.read_text())
    assert (
        not Path(f"/proc/{pid}").exists() or Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    )
    payloads = [json.loads(line) for line in received.read_text().splitlines()]
    seen = [(p["event"], p["kind"]) for p in payloads]
    assert seen[:4] == [
        ("raised", "job_failed"),
        ("cleared", "job_failed"),
        ("cleared", "job_finished"),
        ("raised", "job_finished"),
    ] or seen[:4] == [
        ("raised", "job_failed"),
        ("cleared", "job_failed"),
        ("raised", "job_finished"),
        ("cleared", "job_finished"),
    ]
    assert ("raised", "job_stopped") in seen
    for payload in payloads:
        assert payload["output_folder"] == str(warp_session / "classification")
        assert payload["text"] and payload["time"] and payload["level"] in {"info", "error"}
    log = (warp_session / "classification" / LOG_NAME).read_text()
    assert "failed (exit status 1)" in log and "Alert hook" in log


SLOW_JOB = TINY_JOB.with_changes(run_count_startup=1, run_count_refine=4)
"""Seed, one startup cycle at the final limit, four refinement cycles: five at one limit."""


async def test_a_slow_cycle_fires_once_and_ends_with_a_normal_one(
    warp_session: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(alerts, "SLOW_MIN_EXCESS_SECONDS", 0.0)  # tiny cycles, real rule
    flags = tmp_path / "flags"
    refine, merge = fake_pair(tmp_path / "bin", flags)
    server = tiny_server(engine="cistem", refine2d=refine, merge2d=merge)
    sup = Supervisor(Config(server=server, job=SLOW_JOB), warp_folder=warp_session)
    rec = Recorder(sup.bus)

    def slow_fourth(event: Event) -> None:  # cycle 4 works 1.5 CPU-s per program run
        if isinstance(event, CycleStarted) and event.number == 4:
            (flags / "spin").write_text("1.5")
        if isinstance(event, CycleFinished) and event.number == 4:
            (flags / "spin").unlink()

    sup.bus.subscribe(slow_fourth)
    await sup.start()
    try:
        await sup.ingest_now(settle=True)
        await sup.start_job_now(continue_automatic=False)
        await rec.wait(lambda e: isinstance(e, JobFinished), timeout=180)
    finally:
        await sup.close()
    assert [e.success for e in rec.of(JobFinished)] == [True]
    slow = raised(rec, AlertKind.CYCLE_SLOW)
    assert len(slow) == 1 and slow[0].alert.text.startswith("Cycle 4 ")
    end = cleared(rec, AlertKind.CYCLE_SLOW)
    assert len(end) == 1 and end[0].text.startswith("Cycle 5 ran at the usual speed")


async def test_a_spinning_cycle_is_noticed_before_it_ends(
    warp_session: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(alerts, "SLOW_MIN_EXCESS_SECONDS", 0.0)
    flags = tmp_path / "flags"
    refine, merge = fake_pair(tmp_path / "bin", flags)
    server = tiny_server(engine="cistem", refine2d=refine, merge2d=merge, watchdog_minutes=10.0)
    sup = Supervisor(Config(server=server, job=SLOW_JOB), warp_folder=warp_session)
    rec = Recorder(sup.bus)

    def spin_fourth(event: Event) -> None:  # cycle 4 spins (its CPU time grows, no progress)
        if isinstance(event, CycleStarted) and event.number == 4:
            (flags / "spin").write_text("600")

    sup.bus.subscribe(spin_fourth)
    await sup.start()
    try:
        await sup.ingest_now(settle=True)
        await sup.start_job_now(continue_automatic=False)
        slow = await rec.wait(is_raised(AlertKind.CYCLE_SLOW), timeout=180)
        assert isinstance(slow, AlertRaised)
        assert slow.alert.text.startswith("Cycle 4 is running much slower than earlier cycles")
        assert [e.number for e in rec.of(CycleFinished)] == [0, 1, 2, 3]  # still running
        await sup.abort()
        await rec.wait(lambda e: isinstance(e, StatusChanged) and e.status is SessionStatus.STOPPED)
    finally:
        await sup.close()
    assert len(raised(rec, AlertKind.CYCLE_SLOW)) == 1
    assert os.path.exists(warp_session / "classification" / "cycle_3.mrc")
