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
    assert g.columns == 10 and g.tile_rows == 5 and g.rows == 4
    assert g.tile_px == (100, 100)
    assert g.per_page == 40


@pytest.mark.parametrize(
    ("width", "height", "classes"),
    [(125, 44, 8), (125, 44, 4), (125, 44, 50), (125, 44, 500), (46, 20, 8), (300, 70, 30)],
)
def test_geometry_fills_the_width(width: int, height: int, classes: int) -> None:
    # a 180-column xterm gave five 24-cell tiles and left the rest of the width empty
    g = montage.GridGeometry.fit(width, height, (10, 20), n_classes=classes)
    assert g.columns * g.tile_cols <= width
    assert width - g.columns * g.tile_cols < g.columns  # at most a cell per column left over
    assert g.rows * (g.tile_rows + 1) <= height  # the strips and their label rows fit
    assert g.tile_cols >= montage.MIN_TILE_COLS
    if classes <= 8:  # few classes: one page, the tiles as large as the area allows
        assert g.per_page >= classes
        larger = montage.GridGeometry._layout(g.columns, g.tile_cols + 1, height, (10, 20), 4)
        assert larger.columns * larger.tile_cols > width or larger.per_page < classes


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
def test_encoded_sixel_stays_under_one_megabyte_in_tmux(box: int) -> None:
    """Worst case: noise classes at the largest strip and detail pixel sizes we display, with
    the budget tmux mode gives them (a page's strips share TMUX_PAGE_BYTES by area)."""
    from live2d_tui.ui.images import TMUX_PAGE_BYTES
    from live2d_tui.ui.sixel import encode_grey

    rng = np.random.default_rng(1)
    stack = rng.normal(size=(6, box, box)).astype(np.float32)
    scale = montage.shared_scale(stack, frozenset())
    g = montage.GridGeometry.fit(125, 44, (10, 20), n_classes=6)  # 180 columns, large tiles
    strips = montage.build_page(stack, list(range(6)), g, empty=frozenset(), scale=scale)
    area = sum(s.width * s.height for s in strips)
    pieces = [piece for s in strips for piece, _ in montage.split_strip(s, g, 1000)]
    page = sum(
        len(encode_grey(p, 101, max_bytes=int(TMUX_PAGE_BYTES * p.width * p.height / area)))
        for p in pieces
    )
    assert page < 1_000_000
    detail = montage.build_detail(stack, 0, scale, empty=False)
    assert len(encode_grey(detail, 101, max_bytes=TMUX_PAGE_BYTES)) < 1_000_000
