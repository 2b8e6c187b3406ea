"""The class-average grid: one montage per page, shown as image strips with label rows between.

Layout per page (no scrolling container: Sixel images must never scroll)::

    header: cycle metadata · page p/q · sort
    [ image strip 1: tiles 1..C           ]
     #1 3,412  #2 1,204  ...                <- label row (text only, never over image cells)
    [ image strip 2                       ]
     ...

Invariants:
- Moving the cursor re-renders only the label rows; image widgets are not touched, so nothing
  is re-sent to the terminal. Only a page change, a new cycle, a resize or a redraw request
  (ctrl+l, focus regained) replaces the images.
- Montages are built in a thread worker (numpy/PIL off the event loop); a newer build cancels
  an older one (exclusive worker group).
- Positions are 0-based indices into the display order; class numbers shown are slice + 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from PIL import Image
from rich.text import Text
from textual import events, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Static
from textual.worker import get_current_worker

from live2d_tui.config import ImageMode
from live2d_tui.ui import images, montage


def compact_count(count: int) -> str:
    """A member count in at most 6 characters: 987, 12,345 → 12.3k, 1.2M."""
    if count < 10_000:
        return f"{count:,}"
    if count < 1_000_000:
        return f"{count / 1000:.1f}k"
    return f"{count / 1_000_000:.1f}M"


def label_row(
    classes: Sequence[int], counts: Sequence[int], tile_cols: int, selected: int | None
) -> Text:
    """The text row under a strip: ``#class count`` per tile, the selected tile reversed.

    Args:
        classes: 0-based slices shown in this strip, left to right.
        counts: Members per slice.
        tile_cols: Cells per tile (each label is cut to fit).
        selected: The slice under the cursor, or None.
    """
    row = Text(no_wrap=True, overflow="crop")
    for k in classes:
        count = counts[k] if k < len(counts) else 0
        label = f"#{k + 1} {compact_count(count)}"[: tile_cols - 1].ljust(tile_cols - 1)
        style = "reverse bold" if k == selected else ("dim" if count <= 0 else "")
        row.append(label, style=style)
        row.append(" ")
    return row


class TextRow(Widget):
    """One line of text whose updates repaint only itself (no layout pass).

    ``Static.update`` asks for a layout refresh of the screen; a label row has a fixed size,
    so a repaint is enough, which keeps a cursor move to a few milliseconds.
    """

    DEFAULT_CSS = """
    TextRow { height: 1; width: 1fr; }
    """

    def __init__(self, *, classes: str = "", id: str | None = None) -> None:
        super().__init__(classes=classes, id=id)
        self._text = Text()

    @property
    def text(self) -> Text:
        """What the row shows."""
        return self._text

    def set_text(self, text: Text) -> None:
        """Show ``text`` (repaints only when it changed)."""
        if text.plain != self._text.plain or text.spans != self._text.spans:
            self._text = text
            self.refresh()

    def render(self) -> Text:
        # cut each line to the width (Textual would wrap a long line into the next one)
        width = self.size.width
        if width <= 0:
            return self._text
        lines = self._text.split("\n")
        for line in lines:
            line.truncate(width, overflow="ellipsis")
        return Text("\n").join(lines)


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

    @classmethod
    def from_stack(cls, cycle: int, stack: np.ndarray, counts: Sequence[int]) -> GridData:
        """Compute the empty set and the shared scale once per cycle (call off the loop)."""
        empty = montage.empty_classes(stack, counts)
        return cls(cycle, stack, tuple(counts), montage.shared_scale(stack, empty), empty)


class ClassGrid(Widget, can_focus=True):
    """Class averages of one cycle, a page at a time, with a keyboard/mouse cursor."""

    DEFAULT_CSS = """
    ClassGrid { height: 1fr; overflow: hidden hidden; }
    ClassGrid #grid-header { height: 2; color: $text-muted; }
    ClassGrid #grid-message { height: auto; padding: 1 2; }
    ClassGrid #grid-body { height: 1fr; overflow: hidden hidden; }
    ClassGrid .grid-label { height: 1; }
    ClassGrid:focus .grid-label { color: $text; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("left,h", "move(-1, 0)", "Left", show=False),
        Binding("right,l", "move(1, 0)", "Right", show=False),
        Binding("up,k", "move(0, -1)", "Up", show=False),
        Binding("down,j", "move(0, 1)", "Down", show=False),
        Binding("enter", "open", "Open class", id="grid.open"),
        Binding("pagedown,space", "page(1)", "Next page", show=False),
        Binding("pageup", "page(-1)", "Previous page", show=False),
        Binding("o", "toggle_sort", "Sort", id="grid.sort"),
    ]

    # repaint=False: a change repaints only the label rows it touches (a repaint of the whole
    # grid would repaint the image strips too, which re-sends Sixel/TGP images)
    cursor: reactive[int] = reactive(0, init=False, repaint=False)
    """Position of the selected class in the display order."""
    by_count: reactive[bool] = reactive(False, init=False, repaint=False)
    """Sort by member count (largest first) instead of class number."""

    class Opened(Message):
        """The user asked to open a class full size (Enter or double click)."""

        def __init__(self, index: int) -> None:
            super().__init__()
            self.index = index
            """0-based slice."""

    def __init__(self, mode: ImageMode, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._mode = mode
        self._data: GridData | None = None
        self._order: list[int] = []
        self._geometry: montage.GridGeometry | None = None
        self._page_shown: int | None = None
        self._strips: list[Image.Image] = []
        self._header = ""
        self.image_generation = 0
        """Counts image uploads (new image widgets); tests check cursor moves keep it."""

    def compose(self) -> ComposeResult:
        yield TextRow(id="grid-header")
        yield Static("", markup=False, id="grid-message")
        yield Vertical(id="grid-body")

    # ------------------------------------------------------------------ data

    @property
    def data(self) -> GridData | None:
        """The cycle shown, or None."""
        return self._data

    @property
    def order(self) -> list[int]:
        """0-based slices in display order."""
        return list(self._order)

    @property
    def selected(self) -> int | None:
        """The 0-based slice under the cursor."""
        return self._order[self.cursor] if self._order else None

    def show_message(self, text: str) -> None:
        """Show a message instead of classes (e.g. before the first cycle)."""
        self.workers.cancel_group(self, "grid-page")
        self._data = None
        self._order = []
        self._strips = []
        self._page_shown = None
        self.query_one("#grid-header", TextRow).set_text(Text())
        self.query_one("#grid-message", Static).update(text)
        self.query_one("#grid-message").display = True
        self.query_one("#grid-body").remove_children()

    def set_data(self, data: GridData, header: str, *, keep_cursor: bool = True) -> None:
        """Show a cycle's classes. The cursor stays on the same class number when it can."""
        previous = self.selected if keep_cursor else None
        self._data = data
        self._header = header
        self._order = montage.sort_order(data.counts, data.stack.shape[0], by_count=self.by_count)
        self.query_one("#grid-message").display = False
        pos = self._order.index(previous) if previous in self._order else 0
        self.set_reactive(ClassGrid.cursor, pos)
        self._page_shown = None
        self._refresh_page()

    def set_header(self, header: str) -> None:
        """Replace the metadata line."""
        self._header = header
        self._update_header()

    # ---------------------------------------------------------------- layout

    def _fit(self) -> montage.GridGeometry:
        width = max(10, self.size.width)
        height = max(4, self.size.height - 2)
        n = len(self._order) or None
        return montage.GridGeometry.fit(width, height, images.cell_size(), n_classes=n)

    @property
    def page(self) -> int:
        """The page the cursor is on."""
        per = self._geometry.per_page if self._geometry else 1
        return self.cursor // max(1, per)

    @property
    def page_count(self) -> int:
        """Pages of the current cycle."""
        per = self._geometry.per_page if self._geometry else 1
        return max(1, -(-len(self._order) // max(1, per)))

    def on_resize(self, event: events.Resize) -> None:
        # tmux drops Sixel images on any pane resize: re-send them even if the grid still fits
        if self._data is not None:
            self.redraw_images()

    def _refresh_page(self) -> None:
        if self._data is None or not self.size.width:
            self._update_header()
            return
        self._geometry = self._fit()
        if self._page_shown != self.page:
            self._page_shown = self.page
            per = self._geometry.per_page
            start = self.page * per
            self._build_page(self._data, self._order[start : start + per], self._geometry)
        self._update_labels()
        self._update_header()

    @work(thread=True, exclusive=True, group="grid-page", exit_on_error=False)
    def _build_page(self, data: GridData, order: list[int], geometry: montage.GridGeometry) -> None:
        strips = montage.build_page(data.stack, order, geometry, empty=data.empty, scale=data.scale)
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self._schedule_mount, strips, geometry)

    def _schedule_mount(self, strips: list[Image.Image], geometry: montage.GridGeometry) -> None:
        self.run_worker(self._mount_strips(strips, geometry), group="grid-mount", exclusive=True)

    async def _mount_strips(
        self, strips: list[Image.Image], geometry: montage.GridGeometry
    ) -> None:
        self._strips = strips
        body = self.query_one("#grid-body")
        await body.remove_children()
        widgets: list[Widget] = []
        for strip in strips:
            image = images.make_image_widget(self._mode, classes="grid-strip")
            image.styles.width = geometry.columns * geometry.tile_cols
            image.styles.height = geometry.tile_rows
            image.image = strip  # type: ignore[attr-defined]
            widgets.append(image)
            widgets.append(TextRow(classes="grid-label"))
        await body.mount_all(widgets)
        self.image_generation += 1
        self._update_labels()

    def redraw_images(self) -> None:
        """Re-send the images (after a resize, reattach or ctrl+l): new widgets, same pixels."""
        images.remeasure_cell_size()
        if self._data is None:
            return
        if self._fit() != self._geometry or not self._strips:
            self._page_shown = None
            self._refresh_page()
        elif self._geometry is not None:
            self._schedule_mount(self._strips, self._geometry)

    def _update_labels(self, rows: set[int] | None = None) -> None:
        """Set the label rows of the page (only ``rows``, 0-based, when given)."""
        if self._data is None or self._geometry is None:
            return
        per = self._geometry.per_page
        start = self.page * per
        shown = self._order[start : start + per]
        labels = list(self.query(".grid-label").results(TextRow))
        for r, label in enumerate(labels):
            if rows is not None and r not in rows:
                continue
            classes = shown[r * self._geometry.columns : (r + 1) * self._geometry.columns]
            label.set_text(
                label_row(classes, self._data.counts, self._geometry.tile_cols, self.selected)
            )

    def _update_header(self) -> None:
        lines = [self._header] if self._header else []
        if self._data is not None:
            lines.append(
                f"page {self.page + 1}/{self.page_count} · "
                f"{'by member count' if self.by_count else 'by class number'} (o) · "
                "arrows/hjkl move · enter opens · [ ] cycles"
            )
        header = Text("\n".join(lines), no_wrap=True, overflow="ellipsis")
        self.query_one("#grid-header", TextRow).set_text(header)

    # --------------------------------------------------------------- actions

    def watch_cursor(self, old: int, new: int) -> None:
        per = self._geometry.per_page if self._geometry else 0
        if not per or self._page_shown != self.page or old // per != new // per:
            self._refresh_page()  # another page: new images
            return
        # same page: restyle the label rows of the old and the new position, nothing else
        columns = self._geometry.columns if self._geometry else 1
        self._update_labels(rows={(old % per) // columns, (new % per) // columns})

    def watch_by_count(self, value: bool) -> None:
        if self._data is not None:
            self.set_data(self._data, self._header)

    def action_move(self, dx: int, dy: int) -> None:
        """Move the cursor by tiles (dx) or rows (dy), clamped to the cycle's classes."""
        if not self._order:
            return
        columns = self._geometry.columns if self._geometry else 1
        self.cursor = max(0, min(len(self._order) - 1, self.cursor + dx + dy * columns))

    def action_page(self, delta: int) -> None:
        """Go to the next/previous page (cursor to its first class)."""
        if not self._order or self._geometry is None:
            return
        page = max(0, min(self.page_count - 1, self.page + delta))
        self.cursor = min(len(self._order) - 1, page * self._geometry.per_page)

    def action_toggle_sort(self) -> None:
        """Sort by class number ↔ member count."""
        self.by_count = not self.by_count

    def action_open(self) -> None:
        """Open the selected class full size."""
        if self.selected is not None:
            self.post_message(self.Opened(self.selected))

    def on_click(self, event: events.Click) -> None:
        if self._geometry is None or not self._order:
            return
        strips = list(self.query(".grid-strip"))
        labels = list(self.query(".grid-label"))
        for r, (strip, label) in enumerate(zip(strips, labels, strict=False)):
            for widget in (strip, label):
                region = widget.region
                if region.contains(event.screen_x, event.screen_y):
                    col = (event.screen_x - region.x) // self._geometry.tile_cols
                    if col >= self._geometry.columns:
                        return
                    pos = self.page * self._geometry.per_page + r * self._geometry.columns + col
                    if pos < len(self._order):
                        self.focus()
                        self.cursor = pos
                        if event.chain >= 2:
                            self.action_open()
                    return
