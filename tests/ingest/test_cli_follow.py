"""``live2d ingest`` as a real subprocess, and Dataset.follow on a live simulated session."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from live2d_tui.dataset.ingest import Dataset, IngestReport
from live2d_tui.simulate import SimulationOptions, simulate_session

from .check import check_consistent
from .warpfake import WarpFolder

ROOT = Path(__file__).resolve().parents[2]


def live2d(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "live2d_tui", "ingest", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ},
    )


def test_cli_once_prints_counts_and_defaults_to_classification(tmp_path: Path) -> None:
    warp = WarpFolder(tmp_path / "w")
    warp.write_micrograph("a", 3)
    warp.write_micrograph("b", 2)
    warp.write_star(["a"])
    warp.write_star(["a", "b"], kind="allparticles")
    done = live2d(str(warp.root), "--once")
    assert done.returncode == 0, done.stderr
    assert "micrographs: 1 seen, 1 ingested, 0 deferred, 0 inactive" in done.stdout
    assert "particles: 3 active, 3 in stack" in done.stdout
    assert (warp.root / "classification" / "combined_stack.mrcs").exists()
    done = live2d(str(warp.root), "--once", "--all-particles", "--out", str(tmp_path / "all"))
    assert done.returncode == 0, done.stderr
    assert "particles: 5 active, 5 in stack" in done.stdout


def test_cli_errors_are_one_line_naming_the_folder(tmp_path: Path) -> None:
    done = live2d(str(tmp_path), "--once")
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0
    assert str(tmp_path) in done.stderr and "not a Warp folder" in done.stderr
    warp = WarpFolder(tmp_path / "w")
    warp.write_settings(export=False)
    done = live2d(str(warp.root), "--once")
    assert done.returncode == 2 and "particle export is off" in done.stderr


def test_cli_follow_stops_on_sigint(tmp_path: Path) -> None:
    warp = WarpFolder(tmp_path / "w")
    warp.write_micrograph("a", 2)
    warp.write_star(["a"])
    proc = subprocess.Popen(
        [sys.executable, "-m", "live2d_tui", "ingest", str(warp.root), "--interval", "0.5"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    lines = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        lines.append(line)
        if "2 active" in line:
            break
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert any("particles: 2 active, 2 in stack" in line for line in lines)


async def test_follow_ingests_a_live_session_and_stops(tmp_path: Path) -> None:
    folder = tmp_path / "warp"
    opts = SimulationOptions(
        micrographs=4, particles_per_micrograph=8, box=32, pixel_size=3.0, diameter=60.0, rate=0.6
    )
    done = threading.Event()
    sim = threading.Thread(target=lambda: (simulate_session(folder, opts), done.set()))
    sim.start()
    while not (folder / "previous.settings").exists():
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.1)
    ds = Dataset(folder, tmp_path / "out", settle_seconds=0.3)
    stop = asyncio.Event()
    reports: list[IngestReport] = []

    def on_report(report: IngestReport) -> None:
        reports.append(report)
        settled = report.micrographs_seen == report.micrographs_ingested == 4
        if done.is_set() and settled and not report.pending:
            stop.set()

    await asyncio.wait_for(ds.follow(stop, on_report, interval=0.5), timeout=60)
    await asyncio.to_thread(sim.join)
    assert reports[-1].particles_active == ds.particle_count() > 0
    assert sum(r.particles_appended for r in reports) == ds.particle_count()
    check_consistent(ds)
    ds.close()
