"""One small job (seed, startup, refinement) on the built-in engine's real programs."""

from __future__ import annotations

from pathlib import Path

import pytest

from live2d_tui.classify.engines import resolve_engine
from live2d_tui.classify.runner import CycleRunner
from live2d_tui.classify.schedule import plan_job
from live2d_tui.config import EngineKind, JobSettings, ServerConfig
from live2d_tui.formats.cistem_star import read_star
from live2d_tui.formats.mrc import read_shape, voxel_size

from .conftest import make_dataset


async def test_builtin_engine_runs_a_small_job(tmp_path: Path) -> None:
    dataset = make_dataset(tmp_path / "session", count=60, box=32, phase_shift=30.0)
    settings = JobSettings(
        class_number=3,
        run_count_startup=1,
        run_count_refine=1,
        mask_radius=30.0,
        particles_per_class=10,
    )
    programs = resolve_engine(ServerConfig(engine=EngineKind.BUILTIN))
    logs: list[str] = []
    runner = CycleRunner(dataset.folder, programs, pool_size=2, jobs_per_cycle=2, log=logs.append)
    previous: int | None = None
    plan = plan_job(settings, last_cycle_number=None)
    for cycle in plan.cycles:
        result = await runner.run_cycle(cycle, dataset.inputs(previous=previous), settings)
        previous = cycle.number
        assert result.particle_count == 60 == sum(result.members)
        shape = read_shape(result.classes_path)
        assert (shape.nx, shape.ny, shape.nz) == (32, 32, 3)
        assert voxel_size(result.classes_path)[0] == pytest.approx(2.5)
    assert result.number == 2 and result.process_count == 2
    rows = read_star(result.star_path)
    assert rows["position"].tolist() == list(range(1, 61))
    assert set(rows["best_class"].tolist()) <= {1, 2, 3}
    assert rows["phase_shift"].tolist() == [30.0] * 60
    assert not any("echo differs" in line for line in logs), logs
    # what tells these stars from the earlier engine's, whose shifts were negated (README): the
    # cycle star's header and the program runs' logs
    header = result.star_path.read_text(encoding="utf-8").split("data_")[0]
    assert "psi and shifts as cisTEM refine2d" in header
    job_logs = sorted((dataset.folder / "cycles" / "cycle_2").glob("refine2d_*.log"))
    assert len(job_logs) == 2
    assert all("Library Version : live2d-engine 1.1" in p.read_text() for p in job_logs)
