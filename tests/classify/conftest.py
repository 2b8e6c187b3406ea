"""Fixtures for the cycle tests: a small dataset on disk and the strict fake cisTEM programs."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import mrcfile
import numpy as np
import pytest

from live2d_tui.classify.engines import EnginePrograms
from live2d_tui.classify.inputs import CycleInputs
from live2d_tui.config import EngineKind
from live2d_tui.formats.cistem_star import empty_rows, write_star

FAKE = Path(__file__).with_name("fake_cistem.py")


def fake_programs() -> EnginePrograms:
    """The strict fake refine2d/merge2d as an engine pair."""
    return EnginePrograms(
        EngineKind.CISTEM,
        [sys.executable, str(FAKE), "refine2d"],
        [sys.executable, str(FAKE), "merge2d"],
    )


@dataclass
class Dataset:
    folder: Path
    stack: Path
    star: Path
    count: int
    box: int
    pixel_size: float

    def inputs(
        self,
        active: np.ndarray | None = None,
        *,
        nz: int | None = None,
        previous: int | None = None,
    ) -> CycleInputs:
        """Cycle inputs; ``previous`` = number of the previous cycle in the folder."""
        return CycleInputs(
            stack_path=self.stack,
            nz=self.count if nz is None else nz,
            dataset_star=self.star,
            active_positions=np.arange(1, self.count + 1) if active is None else active,
            previous_star=None if previous is None else self.folder / f"cycle_{previous}.star",
            previous_classes=None if previous is None else self.folder / f"cycle_{previous}.mrc",
            pixel_size=self.pixel_size,
        )


def make_dataset(folder: Path, count: int = 40, box: int = 16, phase_shift: float = 0.0) -> Dataset:
    folder.mkdir(parents=True, exist_ok=True)
    stack = folder / "combined_stack.mrcs"
    rng = np.random.default_rng(0)
    with mrcfile.new(stack, overwrite=True) as mrc:
        mrc.set_data(rng.standard_normal((count, box, box)).astype(np.float32))
        mrc.set_image_stack()
        mrc.voxel_size = 2.5
    rows = empty_rows(count)
    rows["position"] = np.arange(1, count + 1)
    rows["defocus_1"] = 15000.0 + np.arange(count)
    rows["defocus_2"] = 14500.0 + np.arange(count)
    rows["defocus_angle"] = 30.0
    rows["phase_shift"] = phase_shift
    rows["pixel_size"] = 2.5
    rows["voltage"] = 300.0
    rows["cs"] = 2.7
    rows["amplitude_contrast"] = 0.07
    star = folder / "combined_stack.star"
    write_star(star, rows)
    return Dataset(folder, stack, star, count, box, 2.5)


@pytest.fixture
def dataset(tmp_path: Path) -> Dataset:
    return make_dataset(tmp_path / "session")


@pytest.fixture
def fake_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    state = tmp_path / "fake_state"
    state.mkdir()
    monkeypatch.setenv("FAKE_STATE", str(state))
    return state


@pytest.fixture
def events() -> list[object]:
    return []


LogSink = Callable[[str], None]
