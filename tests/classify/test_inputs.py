"""The cycle input star: active positions ≤ NZ, carried alignments, CTF afresh from the dataset."""

from __future__ import annotations

import numpy as np
import pytest

from live2d_tui.classify.inputs import (
    CycleInputError,
    build_input_rows,
    load_input_rows,
    select_positions,
)
from live2d_tui.formats.cistem_star import empty_rows, read_star, write_star

from .conftest import Dataset


def test_positions_are_sorted_unique_and_capped_at_nz() -> None:
    assert select_positions([9, 3, 3, 12, 1], 10).tolist() == [1, 3, 9]
    with pytest.raises(CycleInputError):
        select_positions([0, 2], 5)


def test_rows_carry_alignment_and_take_ctf_afresh(dataset: Dataset) -> None:
    data = read_star(dataset.star)
    data["phase_shift"] = 45.0
    previous = empty_rows(3)
    previous["position"] = [2, 5, 7]
    previous["psi"] = [10.0, 20.0, 30.0]
    previous["x_shift"] = [1.0, 2.0, 3.0]
    previous["best_class"] = [3, -2, 1]
    previous["phase_shift"] = 0.785  # radians, as refine2d writes it back
    previous["defocus_1"] = 1.0
    positions = np.array([1, 2, 5, 8])
    rows = build_input_rows(data, positions, previous)
    assert rows["position"].tolist() == [1, 2, 5, 8]
    assert rows["psi"].tolist() == [0.0, 10.0, 20.0, 0.0]
    assert rows["x_shift"].tolist() == [0.0, 1.0, 2.0, 0.0]
    assert rows["best_class"].tolist() == [0, 3, -2, 0]
    assert rows["phase_shift"].tolist() == [45.0] * 4
    assert rows["defocus_1"].tolist() == data["defocus_1"][[0, 1, 4, 7]].tolist()


def test_missing_dataset_row_is_an_error(dataset: Dataset) -> None:
    data = read_star(dataset.star)
    with pytest.raises(CycleInputError, match="no row for stack position"):
        build_input_rows(data, np.array([1, dataset.count + 5]), None)
    with pytest.raises(CycleInputError, match="no active particles"):
        build_input_rows(data, np.array([], dtype=np.int64), None)


def test_load_uses_nz_at_cycle_start(dataset: Dataset) -> None:
    active = np.array([2, 4, 6, 30, 35])
    rows = load_input_rows(dataset.inputs(active, nz=31))
    assert rows["position"].tolist() == [2, 4, 6, 30]


def test_unordered_dataset_star_is_looked_up_by_position(dataset: Dataset) -> None:
    data = read_star(dataset.star)[::-1].copy()
    write_star(dataset.star, data)
    rows = load_input_rows(dataset.inputs(np.array([3, 1])))
    assert rows["position"].tolist() == [1, 3]
    assert rows["defocus_1"].tolist() == [15000.0, 15002.0]
