"""SIGKILL of ``live2d run`` during cycles, then restart: nothing corrupt or lost, no orphan."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import pytest

from live2d_tui.supervisor.state import STATE_NAME

from .conftest import engine_processes
from .headless import Headless, check_history, load_json_state, write_config

TRIALS = 20


def _alive(pids: list[int]) -> list[int]:
    alive = []
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        if stat[stat.rindex(")") + 2] != "Z":
            alive.append(pid)
    return alive


@pytest.mark.slow
def test_sigkill_during_cycles_then_restart(tmp_path: Path, make_warp_session) -> None:  # type: ignore[no-untyped-def]
    warp = make_warp_session(micrographs=4, particles_per_micrograph=40, box=64, seed=5)
    out = warp / "classification"
    config = write_config(tmp_path)
    rng = random.Random(20261126)
    # one long job (1 + 30 + 10 cycles), so every trial kills it in the middle of a cycle
    job = ["--set", "run_count_startup=30", "--set", "run_count_refine=10"]
    orphans: list[int] = []
    continued = 0
    for trial in range(TRIALS):
        state = load_json_state(out) if (out / STATE_NAME).exists() else None
        expected = state["job"]["next_cycle_number"] if state and state["job"] else None  # type: ignore[index]
        run = Headless([str(warp), "--auto", "--config", str(config), *job])
        line = run.wait_for(" started (", timeout=120)
        started = int(run.lines[line].split("Cycle ")[1].split(" started")[0])
        if expected is not None:
            # the interrupted job continues at its next cycle, not from the start
            assert started == expected, (trial, started, expected, run.text()[-2000:])
            continued += 1
            # the previous run's orphans were ended before this run's first cycle started
            assert _alive(orphans) == [], (trial, orphans)
        time.sleep(rng.uniform(0.0, 1.5))
        run.kill()
        orphans = engine_processes(out)
        # no corrupt file: the state parses, the history is intact
        json.loads((out / STATE_NAME).read_text())
        history = check_history(out)
        assert [c["number"] for c in history] == list(range(len(history)))
        after = load_json_state(out)
        assert after["job"] is not None, f"trial {trial}: the job ended; make it longer"
    assert continued == TRIALS - 1
    final = Headless([str(warp), "--auto", "--config", str(config)])
    final.wait_for(" started (", timeout=120)
    assert _alive(orphans) == []
    final.signal(2)  # SIGINT: stop after this cycle
    assert final.finish(120) == 0, final.text()[-3000:]
    history = check_history(out)
    assert all(
        c["settings"]["classification_type"] == "abinit" for c in history
    )  # one job, continued across 21 processes
    assert engine_processes(out) == []
    assert not list(out.glob(".*.tmp"))
