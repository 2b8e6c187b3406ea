"""Class-average montages: float32 class stacks → one grey image per page, cut into strips.

A page of the class grid is built as **one** montage (one intensity scale, one build) and cut
into horizontal strips, one per tile row; the grid shows each strip as one image with a text row
of labels under it, so labels never sit on image cells (tmux drops an image that text is
written over) and a page holds only a handful of stored images (tmux keeps 10–20 server-wide).

Invariants:
- One intensity scale per montage: percentiles over all non-empty classes of the cycle, so
  brightness is comparable between classes (the original stretched each PNG on its own).
- An empty class (no members, or a flat image) gets a distinct tile, never a stretched blank.
- Tile ``k`` of a strip covers exactly the cell columns ``[k·tile_cols, (k+1)·tile_cols)``, so
  a mouse click maps to a class by integer division.
- Pure numpy/PIL; callers run it off the event loop (a thread worker).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from live2d_tui.formats.mrc import MrcError, read_header, read_slices

GUTTER_PX = 2
"""Dark pixels between tiles (1–2 px keeps tiles apart without wasting area)."""

PERCENTILES = (0.5, 99.5)
"""Clip points of the shared intensity scale: robust to hot pixels and masked corners."""

MIN_TILE_COLS = 10
"""The narrowest tile in cells: ~10 classes across 100 columns."""

MAX_STRIPS = 4
"""Strips (stored images) per page: tmux keeps 10 (3.4–3.6) or 20 (3.7+) server-wide."""

EMPTY_BACKGROUND = 24
EMPTY_MARK = 90
"""Grey levels of an empty class's tile: dark with a diagonal cross."""


def load_class_stack(path: Path) -> np.ndarray:
    """Read a class-average stack (``cycle_<N>.mrc``) as float32 ``(K, ny, nx)``.

    Uses the project's MRC reader (:mod:`live2d_tui.formats.mrc`): header checks and plain
    reads (no mmap, which is unsafe when the output folder is on a network share).

    Raises:
        ValueError: not a complete MRC of a supported mode, or no slices.
    """
    header = read_header(path)
    if header.nz < 1:
        raise MrcError(f"{path}: the class stack holds no slices")
    return read_slices(path, header, np.arange(1, header.nz + 1, dtype=np.int64))


def empty_classes(stack: np.ndarray, counts: Sequence[int] | None) -> frozenset[int]:
    """0-based slices that are empty: no members (when counts are known) or a flat image.

    Args:
        stack: ``(K, ny, nx)`` class averages.
        counts: Members per class, ``counts[i]`` for slice ``i`` (None: unknown).
    """
    empty: set[int] = set()
    for i in range(stack.shape[0]):
        img = stack[i]
        no_members = counts is not None and i < len(counts) and counts[i] <= 0
        if no_members or not np.all(np.isfinite(img)) or float(np.ptp(img)) == 0.0:
            empty.add(i)
    return frozenset(empty)


def shared_scale(stack: np.ndarray, empty: frozenset[int]) -> tuple[float, float]:
    """``(low, high)`` grey limits from percentiles over every non-empty class.

    A subsample of at most ~1M pixels keeps this cheap for 1000 classes of large boxes.
    """
    keep = [i for i in range(stack.shape[0]) if i not in empty]
    if not keep:
        return 0.0, 1.0
    pixels = stack[keep].reshape(-1)
    step = max(1, pixels.size // 1_000_000)
    sample = pixels[::step]
    low, high = (float(v) for v in np.percentile(sample, PERCENTILES))
    if not high > low:
        high = low + 1.0
    return low, high


def to_uint8(image: np.ndarray, scale: tuple[float, float]) -> np.ndarray:
    """Map ``image`` through the shared scale to 0–255."""
    low, high = scale
    out = (np.asarray(image, dtype=np.float32) - low) * (255.0 / (high - low))
    return np.clip(out, 0, 255).astype(np.uint8)


def empty_tile(width: int, height: int) -> np.ndarray:
    """The tile of an empty class: dark grey with a diagonal cross."""
    tile = np.full((height, width), EMPTY_BACKGROUND, dtype=np.uint8)
    n = min(width, height)
    idx = np.arange(n)
    x0, y0 = (width - n) // 2, (height - n) // 2
    tile[y0 + idx, x0 + idx] = EMPTY_MARK
    tile[y0 + idx, x0 + n - 1 - idx] = EMPTY_MARK
    return tile


def render_class(
    image: np.ndarray, scale: tuple[float, float], size: tuple[int, int], *, empty: bool = False
) -> np.ndarray:
    """One class as a uint8 tile of ``size = (width, height)`` pixels (aspect kept, centred)."""
    width, height = size
    if empty:
        return empty_tile(width, height)
    grey = Image.fromarray(to_uint8(image, scale))
    ny, nx = image.shape
    factor = min(width / nx, height / ny)
    new = (max(1, round(nx * factor)), max(1, round(ny * factor)))
    grey = grey.resize(new, Image.Resampling.BILINEAR if factor >= 1 else Image.Resampling.LANCZOS)
    tile = np.zeros((height, width), dtype=np.uint8)
    x0, y0 = (width - new[0]) // 2, (height - new[1]) // 2
    tile[y0 : y0 + new[1], x0 : x0 + new[0]] = np.asarray(grey)
    return tile


@dataclass(frozen=True, slots=True)
class GridGeometry:
    """How a page of classes maps onto terminal cells and montage pixels."""

    columns: int
    """Tiles per strip."""
    rows: int
    """Strips per page."""
    tile_cols: int
    """Cells a tile is wide."""
    tile_rows: int
    """Cells a tile is tall (the label row comes on top of this)."""
    cell_px: tuple[int, int]
    """Pixels per cell (width, height)."""

    @property
    def per_page(self) -> int:
        """Classes on one page."""
        return self.columns * self.rows

    @property
    def tile_px(self) -> tuple[int, int]:
        """Pixels of one tile, gutter included."""
        return self.tile_cols * self.cell_px[0], self.tile_rows * self.cell_px[1]

    @classmethod
    def fit(
        cls,
        width_cells: int,
        height_cells: int,
        cell_px: tuple[int, int],
        *,
        n_classes: int | None = None,
        tile_cols: int | None = None,
        max_rows: int = MAX_STRIPS,
    ) -> GridGeometry:
        """The grid of square-in-pixels tiles for an area of ``width × height`` cells.

        Each strip needs ``tile_rows`` cells of image plus one label row; at most ``max_rows``
        strips per page keeps stored images well under tmux's 10-image cap. Without an explicit
        ``tile_cols``, the fewest columns that still show all ``n_classes`` on one page are
        chosen and the tiles are as wide as the area allows (as tall as its height allows), so
        the grid fills the width; with many classes the tiles are at least
        :data:`MIN_TILE_COLS` wide, again stretched over the whole width.
        """
        cw, ch = max(1, cell_px[0]), max(1, cell_px[1])
        width, height = max(1, width_cells), max(3, height_cells)
        tallest = max(6, (height - 1) * ch // cw)  # a tile's image and label row fit the height
        if tile_cols:
            size = max(6, tile_cols)
            return cls._layout(max(1, width // size), size, height, (cw, ch), max_rows)
        most = max(1, width // MIN_TILE_COLS)
        best: GridGeometry | None = None
        for columns in range(1, most + 1):
            size = max(6, min(width // columns, tallest))
            best = cls._layout(columns, size, height, (cw, ch), max_rows)
            if n_classes is None or best.per_page >= n_classes:
                break
        assert best is not None
        return best

    @classmethod
    def _layout(
        cls, columns: int, size: int, height: int, cell: tuple[int, int], max_rows: int
    ) -> GridGeometry:
        tile_rows = max(2, round(size * cell[0] / cell[1]))
        rows = max(1, min(max_rows, height // (tile_rows + 1)))
        return cls(columns, rows, size, tile_rows, cell)


def build_page(
    stack: np.ndarray,
    order: Sequence[int],
    geometry: GridGeometry,
    *,
    empty: frozenset[int],
    scale: tuple[float, float],
) -> list[Image.Image]:
    """The page's montage (classes ``order``, 0-based slices) cut into one image per strip.

    The last strip is as wide as the others (blank tiles pad it), so tiles stay cell-aligned.
    """
    tw, th = geometry.tile_px
    inner = (max(1, tw - GUTTER_PX), max(1, th - GUTTER_PX))
    n_strips = max(1, -(-len(order) // geometry.columns))
    montage = np.zeros((n_strips * th, geometry.columns * tw), dtype=np.uint8)
    for pos, k in enumerate(order):
        r, c = divmod(pos, geometry.columns)
        tile = render_class(stack[k], scale, inner, empty=k in empty)
        y, x = r * th + GUTTER_PX // 2, c * tw + GUTTER_PX // 2
        montage[y : y + inner[1], x : x + inner[0]] = tile
    page = Image.fromarray(montage, mode="L")
    return [page.crop((0, r * th, page.width, (r + 1) * th)) for r in range(n_strips)]


def split_strip(
    strip: Image.Image, geometry: GridGeometry, max_width_px: int | None
) -> list[tuple[Image.Image, int]]:
    """``strip`` cut at tile boundaries into images at most ``max_width_px`` wide (a terminal
    does not draw a wider Sixel image; xterm's limit is 1000 px), as (image, tiles) pairs; a
    strip that fits is one piece. A tile wider than the limit stays whole."""
    tile_w = geometry.tile_px[0]
    if max_width_px is None or strip.width <= max_width_px:
        return [(strip, geometry.columns)]
    per_piece = max(1, max_width_px // tile_w)
    pieces: list[tuple[Image.Image, int]] = []
    for first in range(0, geometry.columns, per_piece):
        tiles = min(per_piece, geometry.columns - first)
        box = (first * tile_w, 0, (first + tiles) * tile_w, strip.height)
        pieces.append((strip.crop(box), tiles))
    return pieces


def build_detail(
    stack: np.ndarray, index: int, scale: tuple[float, float], *, empty: bool, max_px: int = 640
) -> Image.Image:
    """One class for the detail view, at most ``max_px`` on a side (the widget scales it).

    ``max_px`` bounds the encoded size: 640×640 grey noise encodes to ~465 KiB of Sixel, under
    tmux's 1 MB limit (checked in tests/ui/test_montage.py).
    """
    ny, nx = stack[index].shape
    factor = min(max_px / nx, max_px / ny)
    size = (max(1, round(nx * factor)), max(1, round(ny * factor)))
    return Image.fromarray(render_class(stack[index], scale, size, empty=empty), mode="L")


def sort_order(counts: Sequence[int], n_classes: int, *, by_count: bool) -> list[int]:
    """0-based slices in display order: by class number, or by member count (largest first).

    ``counts[i]`` is the member count of slice ``i`` (missing entries count 0); ties keep class
    order, so the order is stable between refreshes.
    """
    order = list(range(n_classes))
    if by_count:
        order.sort(key=lambda i: -(counts[i] if i < len(counts) else 0))
    return order
