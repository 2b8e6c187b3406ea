"""SIGKILL the ingest process at random instants; after each kill, reopening reconciles stack,
ledger and both stars, and nothing is lost or duplicated once ingest resumes."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from live2d_tui.dataset.ingest import Dataset

from .check import check_active_match_sources, check_consistent, ledger_ranges
from .warpfake import WarpFolder

ROOT = Path(__file__).resolve().parents[2]
TRIALS = 24


def kill_during_ingest(warp: Path, out: Path, delay: float, *, stall: bool = False) -> None:
    """Start an ingest child, wait ``delay`` seconds (or, with ``stall``, until it is held inside
    an append with its slices written but no header or ledger yet), then SIGKILL it."""
    argv = [sys.executable, "-m", "tests.ingest.crash_child", str(warp), str(out)]
    child = subprocess.Popen(
        [*argv, "--stall"] if stall else argv,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line.strip() == "open", child.stderr.read() if child.stderr else ""
        if stall:
            line = child.stdout.readline()
            assert line.strip() == "stalled", child.stderr.read() if child.stderr else ""
        else:
            time.sleep(delay)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        if child.stdout:
            child.stdout.close()
        if child.stderr:
            child.stderr.close()
    assert child.returncode == -signal.SIGKILL


@pytest.mark.slow
def test_sigkill_at_random_instants_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    rng = random.Random(1234)
    warp = WarpFolder(tmp_path / "w", box=64)
    out = tmp_path / "out"
    listed: list[str] = []
    repaired = partial = 0
    for trial in range(TRIALS):
        for _ in range(3):
            root = f"mic{len(warp.micrographs):03d}"
            warp.write_micrograph(root, rng.randint(20, 60), seed=trial * 10 + len(listed))
            listed.append(root)
        if trial % 5 == 4:  # Warp's filter drops one, reprocessing changes another
            listed.remove(rng.choice(listed))
            redo = rng.choice(listed)
            warp.write_micrograph(redo, rng.randint(20, 60), seed=1000 + trial)
        warp.write_star(listed)
        # every third kill is certain to land inside an append; the others at random instants
        kill_during_ingest(warp.root, out, rng.uniform(0.0, 1.5), stall=trial % 3 == 1)
        messages: list[str] = []
        ds = Dataset(warp.root, out, settle_seconds=0.0, log=messages.append)  # reconciles
        repaired += any(m.startswith("recovered") for m in messages)
        partial += 0 < ds.particle_count() < sum(len(d) for d in warp.micrographs.values())
        try:
            check_consistent(ds)
            active = {r[0] for r in ledger_ranges(out) if r[3]}
            sources = {warp.stack_rel(r): warp.micrographs[r] for r in listed}
            assert active <= set(sources)
            check_active_match_sources(ds, {s: sources[s] for s in active})
        finally:
            ds.close()
    print(f"{TRIALS} kills: {repaired} left a torn tail to repair, {partial} mid-session")
    assert repaired >= TRIALS // 3  # at least every stalled kill left a torn tail to repair
    ds = Dataset(warp.root, out, settle_seconds=0.0)
    try:
        for _ in range(4):
            ds.poll()
        sources = {warp.stack_rel(r): warp.micrographs[r] for r in listed}
        check_active_match_sources(ds, sources)
        assert {r[0] for r in ledger_ranges(out) if r[3]} == set(sources)
    finally:
        ds.close()
