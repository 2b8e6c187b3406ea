"""A cycle's classes and the grid pages built from them, off the event loop.

:class:`GridData` is one cycle as the grid shows it (computed once per cycle); a
:class:`GridPage` is one page of it, montage cut into strips and, for half-cell images, already
encoded. Everything here is pure (numpy, PIL, Rich) and runs in thread workers: the app's load
worker builds a new cycle's first page (:meth:`GridView.page_for`), the grid's page worker any
other page. The class grid only puts finished pages on screen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
from PIL import Image
from textual.strip import Strip

from live2d_tui.config import ImageMode
from live2d_tui.results.cycle_results import CycleResults
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
    results: CycleResults | None = None
    """The cycle's half-set figures and class marks (``None`` until read)."""

    @classmethod
    def from_stack(
        cls, cycle: int, stack: np.ndarray, counts: Sequence[int], *, members_known: bool = True
    ) -> GridData:
        """Compute the empty set and the shared scale once per cycle (call off the loop).

        Without known members (a random start) a class is empty only when its image is."""
        empty = montage.empty_classes(stack, counts if members_known else None)
        scale = montage.shared_scale(stack, empty)
        return cls(cycle, stack, tuple(counts), scale, empty, members_known)

    def with_results(self, results: CycleResults | None) -> GridData:
        """The same classes with other figures and marks (the images are shared)."""
        return replace(self, results=results)

    def marks(self) -> dict[int, str]:
        """0-based slice → ``good``, ``bad`` or ``unreviewed`` for the marked classes."""
        return {} if self.results is None else self.results.marks()

    def order(self, sort: Sort) -> list[int]:
        """0-based slices in the display order of ``sort`` (by number while a resolution order
        has no figures yet)."""
        figures = None
        if sort == "resolution" and self.results is not None:
            figures = self.results.figures()
        return montage.sort_order(
            self.counts, self.stack.shape[0], by_count=sort == "members", figures=figures
        )


Sort = Literal["number", "members", "resolution"]
SORTS: tuple[Sort, ...] = ("number", "members", "resolution")
"""The grid's orders, in the order ``o`` cycles through them."""


def page_marks(data: GridData, slices: Sequence[int]) -> tuple[tuple[int, str], ...]:
    """The marks of ``slices`` (what a page's frames show)."""
    marks = data.marks()
    return tuple((k, marks[k]) for k in slices if k in marks)


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
    marks: tuple[tuple[int, str], ...] = ()
    """The marks framed on this page (:func:`page_marks`)."""

    def shows(self, data: GridData, slices: Sequence[int], geometry: montage.GridGeometry) -> bool:
        """Whether this page is ``slices`` of ``data`` laid out as ``geometry``, with the marks
        ``data`` has (new figures alone do not change the images)."""
        return (
            self.data.stack is data.stack
            and self.slices == tuple(slices)
            and self.geometry == geometry
            and self.marks == page_marks(data, slices)
        )


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
    marks = page_marks(data, slices)
    strips = montage.build_page(
        data.stack, slices, geometry, empty=data.empty, scale=data.scale, marks=dict(marks)
    )
    lines = None
    if mode is ImageMode.HALFCELL:
        width = geometry.columns * geometry.tile_cols
        lines = tuple(halfcell_lines(strip, width, geometry.tile_rows) for strip in strips)
    return GridPage(data, tuple(slices), geometry, tuple(strips), lines, marks)


@dataclass(frozen=True, slots=True)
class GridView:
    """What decides which page of a cycle the grid shows, read on the loop (:meth:`ClassGrid.view`)
    so that a thread can build the page of a cycle it has just read."""

    width: int
    """Cells available for the strips and label rows."""
    height: int
    cell_px: tuple[int, int]
    sort: Sort
    selected: int | None
    """The slice under the cursor, kept under it in the new cycle."""
    mode: ImageMode

    def page_for(self, data: GridData) -> GridPage:
        """The page :meth:`ClassGrid.set_data` will want for ``data`` (call off the loop)."""
        order = data.order(self.sort)
        geometry = fit_geometry(self.width, self.height, self.cell_px, order)
        slices = page_slices(order, cursor_for(order, self.selected), geometry)
        return build_grid_page(data, slices, geometry, self.mode)
