"""``live2d run`` with ``executor = "slurm"`` killed with SIGKILL mid-cycle, then restarted: the
restart cancels the SLURM jobs the dead supervisor left (they outlive it), waits until SLURM
reports them ended, and an abort of the restarted one leaves no job either. Needs a real SLURM
(``.ci/slurm-up``)."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from live2d_tui.classify.executors.slurm_cli import (
    parse_squeue_mine,
    parse_squeue_states,
    run_sync,
    squeue_mine_argv,
    squeue_states_argv,
)
from live2d_tui.classify.executors.slurm_jobs import REGISTRY_NAME, belongs_to

from .headless import Headless, write_config


def live_jobs(folder: Path) -> list[int]:
    result = run_sync(squeue_mine_argv())
    assert result.returncode == 0, result.message()
    return sorted(j.job_id for j in parse_squeue_mine(result.stdout) if belongs_to(j, folder))


def wait_for_jobs(folder: Path, *, besides: list[int], timeout: float = 120.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [i for i in live_jobs(folder) if i not in besides]
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"no SLURM job of {folder} appeared within {timeout} s")


@pytest.mark.usefixtures("slurm")
def test_sigkill_mid_cycle_then_restart_leaves_no_slurm_job(
    tmp_path: Path,
    make_warp_session,  # type: ignore[no-untyped-def]
) -> None:
    warp = make_warp_session(micrographs=4, particles_per_micrograph=40, box=64, seed=5)
    out = (warp / "classification").resolve()
    # the prologue keeps every job running for a minute, whatever the engine needs
    config = write_config(
        tmp_path,
        executor="slurm",
        slurm_prologue=("sleep 60",),
        slurm_poll_seconds=0.5,
        slurm_max_jobs=2,
    )
    first = Headless([str(warp), "--auto", "--config", str(config)])
    orphans = wait_for_jobs(out, besides=[])
    recorded = json.loads((out / "cycles" / REGISTRY_NAME).read_text())
    assert sorted(entry["job_id"] for entry in recorded) == orphans  # saved before it matters
    first.kill()
    # nobody waits for them now, and SLURM keeps them running
    assert live_jobs(out) == orphans

    second = Headless([str(warp), "--config", str(config)])
    second.wait_for("of the previous run; SLURM reports them ended", timeout=120)
    result = run_sync(squeue_states_argv(orphans))
    ended = {i: s.state for i, s in parse_squeue_states(result.stdout).items()}
    assert set(ended.values()) <= {"CANCELLED"}, ended
    # the interrupted automatic job continues at its cycle with new jobs; SIGTERM aborts it
    resumed = wait_for_jobs(out, besides=orphans)
    second.signal(signal.SIGTERM)
    code = second.finish(120)
    assert code == 128 + signal.SIGTERM, second.text()[-3000:]
    assert live_jobs(out) == []
    result = run_sync(squeue_states_argv(resumed))
    assert {s.state for s in parse_squeue_states(result.stdout).values()} <= {"CANCELLED"}
    assert not (out / "cycles" / REGISTRY_NAME).exists()
    assert "Cancelling SLURM job" in second.text()
