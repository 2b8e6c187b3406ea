"""Montage building: shared scale, empty tiles, cell-aligned strips, encoded size."""

from __future__ import annotations

from pathlib import Path

import mrcfile
import numpy as np
import pytest

from live2d_tui.ui import montage


def _gaussian_stack(k: int, box: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:box, :box] - box / 2
    stack = np.empty((k, box, box), np.float32)
    for i in range(k):
        sigma = 3 + i % 7
        stack[i] = (i + 1) * np.exp(-(x**2 + y**2) / (2 * sigma**2)) + rng.normal(
            0, 0.05, (box, box)
        )
    return stack


def test_load_class_stack_reads_real_mrc(tmp_path: Path) -> None:
    stack = _gaussian_stack(5, 32)
    path = tmp_path / "cycle_1.mrc"
    with mrcfile.new(path) as mrc:
        mrc.set_data(stack)
    loaded = montage.load_class_stack(path)
    assert loaded.shape == (5, 32, 32)
    np.testing.assert_allclose(loaded, stack)


def test_shared_scale_keeps_relative_brightness() -> None:
    stack = _gaussian_stack(4, 32)
    scale = montage.shared_scale(stack, frozenset())
    u8 = [montage.to_uint8(stack[i], scale) for i in range(4)]
    # class 4 is 4× brighter than class 1: with one scale its peak must be brighter too
    assert u8[3].max() > u8[0].max()
    # a per-image stretch would give both a 255 peak; the shared one does not
    assert u8[0].max() < 255


def test_empty_classes_by_count_and_flat_image() -> None:
    stack = _gaussian_stack(4, 16)
    stack[2] = 0.0
    empty = montage.empty_classes(stack, [10, 0, 5, 7])
    assert empty == frozenset({1, 2})
    # empty classes do not influence the scale
    s1 = montage.shared_scale(stack, empty)
    stack[1] = 1e6
    assert montage.shared_scale(stack, empty) == s1


def test_empty_tile_is_distinct() -> None:
    stack = _gaussian_stack(2, 16)
    tile = montage.render_class(stack[0], (0, 1), (20, 20), empty=True)
    assert tile[0, 0] == montage.EMPTY_MARK and tile[5, 10] == montage.EMPTY_BACKGROUND


def test_geometry_fit_square_tiles_and_page_cap() -> None:
    g = montage.GridGeometry.fit(105, 60, (10, 20), tile_cols=10, max_rows=4)
    assert montage.GridGeometry.fit(105, 60, (10, 20), n_classes=6).tile_cols == 24
    assert montage.GridGeometry.fit(105, 60, (10, 20), n_classes=500).tile_cols == 10
    assert g.columns == 10 and g.tile_rows == 5 and g.rows == 4
    assert g.tile_px == (100, 100)
    assert g.per_page == 40


def test_build_page_strips_are_cell_aligned() -> None:
    stack = _gaussian_stack(7, 40)
    g = montage.GridGeometry(columns=3, rows=3, tile_cols=8, tile_rows=4, cell_px=(10, 20))
    strips = montage.build_page(
        stack,
        [0, 1, 2, 3, 4, 5, 6],
        g,
        empty=frozenset({4}),
        scale=montage.shared_scale(stack, frozenset()),
    )
    assert len(strips) == 3
    assert all(s.size == (240, 80) for s in strips)
    arr = np.asarray(strips[2])
    # the last strip has one class and two blank (black) tiles
    assert arr[:, 80:].max() == 0 and arr[:, :80].max() > 0
    # tile 4 (0-based) is empty: centre tile of strip 1 shows the cross mark
    mid = np.asarray(strips[1])[:, 80:160]
    assert montage.EMPTY_MARK in mid


def test_sort_order_by_count_stable() -> None:
    assert montage.sort_order([5, 9, 9, 1], 5, by_count=True) == [1, 2, 0, 3, 4]
    assert montage.sort_order([5, 9], 3, by_count=False) == [0, 1, 2]


@pytest.mark.parametrize("box", [64, 400])
def test_encoded_sixel_stays_under_one_megabyte(box: int) -> None:
    """Worst case: noise classes at the largest strip/detail pixel sizes we ever display."""
    from textual_image._sixel import SixelOptions, image_to_sixels

    from live2d_tui.ui.images import SIXEL_COLORS

    rng = np.random.default_rng(1)
    stack = rng.normal(size=(12, box, box)).astype(np.float32)
    scale = montage.shared_scale(stack, frozenset())
    # a 200-column terminal at 10x20 px cells: 20 tiles of 10 cells, 100x100 px each
    g = montage.GridGeometry.fit(200, 50, (10, 20))
    strip = montage.build_page(stack, list(range(12)), g, empty=frozenset(), scale=scale)[0]
    detail = montage.build_detail(stack, 0, scale, empty=False)
    for image in (strip, detail):
        data = image_to_sixels(image.convert("RGB"), SixelOptions(colors=SIXEL_COLORS))
        assert len(data.encode()) < 1_000_000, (image.size, len(data))
