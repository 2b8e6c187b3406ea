"""The engine driven by the real cycle runner on simulated sessions.

- a short job (seed + 2 cycles, 2 dump jobs + merge2d each) proves the runner accepts the
  engine's output exactly as it accepts cisTEM's;
- the quick quality test (slow): about 1,000 particles, 64 px at 3 Å, 4 views, SNR 0.1, ab initio
  with 8 classes → purity ≥ 0.95 and 4 of 4 views recovered (simulator's scorer).
"""

from __future__ import annotations

from pathlib import Path

import mrcfile
import numpy as np
import pytest

from live2d_tui.classify.engines import builtin_programs
from live2d_tui.classify.inputs import CycleInputs
from live2d_tui.classify.runner import CycleRunner
from live2d_tui.classify.schedule import plan_job
from live2d_tui.config import JobSettings
from live2d_tui.dataset.ingest import Dataset
from live2d_tui.formats.cistem_star import read_star
from live2d_tui.simulate import SimulationOptions, simulate_session
from live2d_tui.simulate.score import original_names_from_relion_star, score_classes


def _ingest(tmp_path: Path, opts: SimulationOptions) -> Dataset:
    session = tmp_path / "session"
    simulate_session(session, opts)
    dataset = Dataset(session, tmp_path / "out", settle_seconds=0.0)
    dataset.poll_until_settled(10.0, interval=0.05)
    assert dataset.particle_count() > 0, "ingest did not settle"
    return dataset


async def _run_job(dataset: Dataset, settings: JobSettings) -> int:
    runner = CycleRunner(dataset.output_folder, builtin_programs(), pool_size=2, jobs_per_cycle=2)
    pixel = float(read_star(dataset.star_path)["pixel_size"][0])
    positions = dataset.active_positions()
    previous: int | None = None
    folder = dataset.output_folder
    for cycle in plan_job(settings, last_cycle_number=None).cycles:
        inputs = CycleInputs(
            stack_path=dataset.stack_path,
            nz=dataset.particle_count(),
            dataset_star=dataset.star_path,
            active_positions=positions,
            previous_star=None if previous is None else folder / f"cycle_{previous}.star",
            previous_classes=None if previous is None else folder / f"cycle_{previous}.mrc",
            pixel_size=pixel,
        )
        await runner.run_cycle(cycle, inputs, settings)
        previous = cycle.number
    assert previous is not None
    return previous


async def test_cycle_runner_runs_on_the_builtin_engine(tmp_path: Path) -> None:
    opts = SimulationOptions(
        micrographs=3,
        particles_per_micrograph=30,
        box=48,
        pixel_size=3.0,
        diameter=100.0,
        snr=0.5,
        seed=2,
    )
    dataset = _ingest(tmp_path, opts)
    settings = JobSettings(
        class_number=3, run_count_startup=2, run_count_refine=1, mask_radius=60.0,
        high_res_initial=30.0, high_res_final=12.0, particles_per_class=300,
    )  # fmt: skip
    last = await _run_job(dataset, settings)
    folder = dataset.output_folder
    rows = read_star(folder / f"cycle_{last}.star")
    assert len(rows) == dataset.particle_count()
    assert np.all((rows["best_class"] >= 1) & (rows["best_class"] <= 3))
    with mrcfile.open(folder / f"cycle_{last}.mrc", permissive=True) as mrc:
        assert mrc.data.shape == (3, 48, 48)
        assert mrc.voxel_size.x == pytest.approx(3.0)


@pytest.mark.slow
async def test_quick_quality_small_session(tmp_path: Path) -> None:
    opts = SimulationOptions(
        micrographs=25, particles_per_micrograph=40, box=64, pixel_size=3.0, diameter=150.0,
        snr=0.1, views=4, seed=1,
    )  # fmt: skip
    dataset = _ingest(tmp_path, opts)
    settings = JobSettings(
        class_number=8, run_count_startup=10, run_count_refine=3, mask_radius=90.0,
        high_res_initial=40.0, high_res_final=9.0, particles_per_class=300,
    )  # fmt: skip
    last = await _run_job(dataset, settings)
    folder = dataset.output_folder
    card = score_classes(
        folder / f"cycle_{last}.mrc",
        folder / f"cycle_{last}.star",
        dataset.stack_path,
        original_names_from_relion_star(dataset.relion_star_path),
        tmp_path / "session" / "truth",
        pixel_size=3.0,
    )
    assert card.purity is not None and card.purity >= 0.95, card.format()
    assert card.views_recovered == pytest.approx(1.0), card.format()
