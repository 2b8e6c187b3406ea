"""Streaming on the built-in engine, end to end: an update that revisits every block equals a
refinement cycle over the same star (the frozen rules make each block decide what the whole
star decides, and the running total is merge2d's one input)."""

from __future__ import annotations

import shutil
from pathlib import Path

import mrcfile
import numpy as np
import pytest

from live2d_tui.classify.engines import builtin_programs
from live2d_tui.classify.inputs import CycleInputs
from live2d_tui.classify.runner import CycleRunner
from live2d_tui.classify.schedule import plan_job
from live2d_tui.classify.streaming.runner import StreamRunner
from live2d_tui.config import ClassificationType, JobSettings
from live2d_tui.formats.cistem_star import read_star, write_star

from .synth import SynthSet, make_set

SETTINGS = JobSettings(
    classification_type=ClassificationType.REFINE,
    class_number=4,
    run_count_refine=1,
    mask_radius=40.0,
    high_res_final=12.0,
    high_res_initial=40.0,
    autocenter=False,  # streaming never auto-centres; the full cycle does the same here
    stream_batch=30,
)


def base_cycle(data: SynthSet, folder: Path) -> None:
    """cycle_0: the true views as classes (a fourth slot empty) and a star assigning them,
    with scores, as a finished job leaves them."""
    folder.mkdir(parents=True)
    rows = read_star(data.star)
    rng = np.random.default_rng(8)
    rows["best_class"] = data.labels + 1
    rows["score"] = rng.uniform(5.0, 30.0, len(rows)).round(2)
    rows["psi"] = rng.uniform(0, 360, len(rows)).round(2)
    write_star(folder / "cycle_0.star", rows)
    classes = np.zeros((4, *data.views.shape[1:]), dtype=np.float32)
    classes[:3] = data.views
    with mrcfile.new(folder / "cycle_0.mrc") as handle:
        handle.set_data(classes)
        handle.voxel_size = data.pixel_size


def inputs(data: SynthSet, folder: Path, previous: int | None) -> CycleInputs:
    n = len(data.labels)
    return CycleInputs(
        stack_path=data.stack,
        nz=n,
        dataset_star=data.star,
        active_positions=np.arange(1, n + 1),
        previous_star=None if previous is None else folder / f"cycle_{previous}.star",
        previous_classes=None if previous is None else folder / f"cycle_{previous}.mrc",
        pixel_size=data.pixel_size,
    )


async def test_an_update_revisiting_every_block_equals_a_refinement_cycle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LIVE2D_ENGINE_SEED", "5")  # the same angle grids in every job
    (tmp_path / "data").mkdir()
    data = make_set(tmp_path / "data", n_particles=90, box=32, n_views=3, snr=0.3, seed=31)
    full, streamed = tmp_path / "full", tmp_path / "stream"
    base_cycle(data, full)
    shutil.copytree(full, streamed)
    runner = CycleRunner(full, builtin_programs(), pool_size=2, jobs_per_cycle=2)
    cycle = plan_job(SETTINGS, last_cycle_number=0).cycles[0]
    result = await runner.run_cycle(cycle, inputs(data, full, 0), SETTINGS)
    stream = StreamRunner(CycleRunner(streamed, builtin_programs(), pool_size=2, jobs_per_cycle=2))
    index = await stream.start(0, inputs(data, streamed, 0), SETTINGS)
    assert len(index.blocks) == 3
    update = await stream.update(
        1, inputs(data, streamed, None), SETTINGS, all_blocks=True, full_star=True
    )
    assert update is not None and update.star_path is not None
    assert update.revisited_particles == 90 and update.process_count == 3
    a, b = read_star(result.star_path), read_star(update.star_path)
    assert np.array_equal(a["position"], b["position"])
    assert np.array_equal(a["best_class"], b["best_class"])
    for name in ("psi", "x_shift", "y_shift", "score"):
        assert np.allclose(a[name], b[name], atol=0.011), name
    assert update.members == result.members and update.used == result.used
    full_classes = mrcfile.read(result.classes_path)
    stream_classes = mrcfile.read(update.classes_path)
    scale = np.abs(full_classes).max()
    assert np.abs(full_classes - stream_classes).max() <= 1e-4 * scale
    # a later update revisiting every block again (no new particles) is a second cycle
    again = await stream.update(2, inputs(data, streamed, None), SETTINGS, all_blocks=True)
    assert again is not None and again.particle_count == 90
    assert stream.check_total() < 1e-12


def distinct_views(count: int, box: int, rng: np.random.Generator) -> np.ndarray:
    """Three views nothing alike: two blobs, three blobs in a row, a ring."""
    del rng
    y, x = np.indices((box, box), dtype=np.float64) - box // 2
    blob = lambda cx, cy, s: np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * s * s))  # noqa: E731
    views = np.stack(
        [
            blob(-3, -2, 2.5) + 0.8 * blob(4, 3, 3.0),
            blob(-6, 0, 2.0) + blob(0, 0, 2.0) + blob(6, 0, 2.0),
            np.exp(-((np.hypot(x, y) - 6.0) ** 2) / 2.0),
        ]
    )
    return views[:count]


async def test_a_view_that_appears_late_gets_a_class(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from live2d_tui.classify.streaming import reseed

    from . import synth

    # the pool's ab initio starts at random: seeded, so the test does not depend on the draw
    # (unseeded it failed in 2 of 7 runs here: the pool's classes came out otherwise)
    monkeypatch.setenv("LIVE2D_ENGINE_SEED", "5")
    monkeypatch.setattr(reseed, "POOL_SIZE", 30)
    monkeypatch.setattr(reseed, "POOL_CLASSES", 3)
    monkeypatch.setattr(synth, "make_views", distinct_views)
    (tmp_path / "data").mkdir()
    data = make_set(tmp_path / "data", n_particles=360, box=32, n_views=3, snr=0.5, seed=41)
    positions = np.arange(1, 361)
    late = data.labels == 2
    # view 3 appears after the first 100 particles: its earlier particles never existed
    first_hundred = positions[~late][99]
    active = positions[~(late & (positions <= first_hundred))]
    folder = tmp_path / "out"
    folder.mkdir()
    rows = read_star(data.star)
    rows["best_class"] = np.where(positions <= first_hundred, data.labels + 1, 0)
    rows["score"] = 20.0
    write_star(folder / "cycle_0.star", rows[np.isin(positions, active)])
    classes = np.zeros((4, 32, 32), dtype=np.float32)
    classes[:2] = data.views[:2]
    with mrcfile.new(folder / "cycle_0.mrc") as handle:
        handle.set_data(classes)
    logs: list[str] = []
    runner = CycleRunner(folder, builtin_programs(), pool_size=2, jobs_per_cycle=2, log=logs.append)
    stream = StreamRunner(runner)
    settings = SETTINGS.with_changes(stream_batch=50)

    def given(nz: int, previous: int | None) -> CycleInputs:
        return CycleInputs(
            stack_path=data.stack, nz=nz, dataset_star=data.star, active_positions=active,
            previous_star=None if previous is None else folder / f"cycle_{previous}.star",
            previous_classes=None if previous is None else folder / f"cycle_{previous}.mrc",
            pixel_size=data.pixel_size,
        )  # fmt: skip

    await stream.start(0, given(int(first_hundred), 0), settings)
    number, nz = 1, int(first_hundred)
    while nz < 360:
        nz = min(360, nz + 50)
        result = await stream.update(number, given(nz, None), settings, force=True)
        assert result is not None
        number += 1
    final = await stream.update(number, given(360, None), settings, all_blocks=True, full_star=True)
    assert final is not None and final.star_path is not None
    star = read_star(final.star_path)
    views = data.labels[star["position"] - 1]
    assert any("takes a view no class had" in line for line in logs), "\n".join(logs)
    own = [
        np.mean(views[star["best_class"] == k] == 2)
        for k in np.unique(star["best_class"])
        if np.sum(star["best_class"] == k) >= 20
    ]
    assert max(own) >= 0.9, own  # a class of the late view
