"""A cycle's classes and the grid pages built from them, off the event loop.

:class:`GridData` is one cycle as the grid shows it (computed once per cycle); a
:class:`GridPage` is one page of it, montage cut into strips and, for half-cell images, already
encoded. Everything here is pure (numpy, PIL, Rich) and runs in thread workers: the app's load
worker builds a new cycle's first page (:meth:`GridView.page_for`), the grid's page worker any
other page. The class grid only puts finished pages on screen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image
from textual.strip import Strip

from live2d_tui.config import ImageMode
from live2d_tui.ui import montage
from live2d_tui.ui.widgets.halfcell import halfcell_lines


@dataclass(frozen=True, slots=True)
class GridData:
    """One cycle's classes as the grid shows them."""

    cycle: int
    stack: np.ndarray
    """``(K, ny, nx)`` float32 class averages."""
    counts: tuple[int, ...]
    """Members per slice (``counts[k]`` for class ``k + 1``)."""
    scale: tuple[float, float]
    empty: frozenset[int]
    members_known: bool = True
    """False for a job's random start: its classes have no members yet (counts are all 0)."""

    @classmethod
    def from_stack(
        cls, cycle: int, stack: np.ndarray, counts: Sequence[int], *, members_known: bool = True
    ) -> GridData:
        """Compute the empty set and the shared scale once per cycle (call off the loop).

        Without known members (a random start) a class is empty only when its image is."""
        empty = montage.empty_classes(stack, counts if members_known else None)
        scale = montage.shared_scale(stack, empty)
        return cls(cycle, stack, tuple(counts), scale, empty, members_known)


@dataclass(frozen=True, slots=True, eq=False)
class GridPage:
    """One page of a cycle as it goes on screen, built off the loop by :func:`build_grid_page`."""

    data: GridData
    slices: tuple[int, ...]
    """0-based slices on the page, in display order."""
    geometry: montage.GridGeometry
    strips: tuple[Image.Image, ...]
    """The montage cut into one image per tile row."""
    lines: tuple[list[Strip], ...] | None
    """Each strip already encoded as half-cell lines, or None (Sixel, TGP and unicode images
    are encoded by their textual-image widget)."""

    def shows(self, data: GridData, slices: Sequence[int], geometry: montage.GridGeometry) -> bool:
        """Whether this page is ``slices`` of ``data`` laid out as ``geometry``."""
        return self.data is data and self.slices == tuple(slices) and self.geometry == geometry


def fit_geometry(
    width: int, height: int, cell_px: tuple[int, int], order: Sequence[int]
) -> montage.GridGeometry:
    """The grid layout of ``order``'s classes in ``width × height`` cells."""
    return montage.GridGeometry.fit(width, height, cell_px, n_classes=len(order) or None)


def cursor_for(order: Sequence[int], selected: int | None) -> int:
    """The cursor position (index into ``order``) of slice ``selected``, else the first."""
    return order.index(selected) if selected in order else 0


def page_slices(
    order: Sequence[int], cursor: int, geometry: montage.GridGeometry
) -> tuple[int, ...]:
    """The slices of the page that holds position ``cursor`` of ``order``."""
    per = max(1, geometry.per_page)
    start = cursor // per * per
    return tuple(order[start : start + per])


def build_grid_page(
    data: GridData, slices: Sequence[int], geometry: montage.GridGeometry, mode: ImageMode
) -> GridPage:
    """Build (and for half-cell images encode) one page: pure numpy/PIL/Rich, call off the loop."""
    strips = montage.build_page(data.stack, slices, geometry, empty=data.empty, scale=data.scale)
    lines = None
    if mode is ImageMode.HALFCELL:
        width = geometry.columns * geometry.tile_cols
        lines = tuple(halfcell_lines(strip, width, geometry.tile_rows) for strip in strips)
    return GridPage(data, tuple(slices), geometry, tuple(strips), lines)


@dataclass(frozen=True, slots=True)
class GridView:
    """What decides which page of a cycle the grid shows, read on the loop (:meth:`ClassGrid.view`)
    so that a thread can build the page of a cycle it has just read."""

    width: int
    """Cells available for the strips and label rows."""
    height: int
    cell_px: tuple[int, int]
    by_count: bool
    selected: int | None
    """The slice under the cursor, kept under it in the new cycle."""
    mode: ImageMode

    def page_for(self, data: GridData) -> GridPage:
        """The page :meth:`ClassGrid.set_data` will want for ``data`` (call off the loop)."""
        order = montage.sort_order(data.counts, data.stack.shape[0], by_count=self.by_count)
        geometry = fit_geometry(self.width, self.height, self.cell_px, order)
        slices = page_slices(order, cursor_for(order, self.selected), geometry)
        return build_grid_page(data, slices, geometry, self.mode)
