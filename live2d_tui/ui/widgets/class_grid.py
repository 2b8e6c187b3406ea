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
- Pages are built in a thread worker (montage, and for half-cell images the encoding too:
  numpy/PIL/Rich off the event loop); a newer build cancels an older one (exclusive worker
  group). Pages and cycles: :mod:`live2d_tui.ui.widgets.grid_page`.
- A finished page goes on screen in one step: half-cell lines are swapped into the strips
  already mounted when the layout is unchanged (a repaint, no layout); otherwise new image
  widgets replace the old inside one batch update. Header, labels and images change together.
- Positions are 0-based indices into the display order; class numbers shown are slice + 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual import events, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Static
from textual.worker import get_current_worker

from live2d_tui.config import ImageMode
from live2d_tui.ui import images, montage
from live2d_tui.ui.text import empty_classes_note
from live2d_tui.ui.widgets.grid_page import (
    GridData,
    GridPage,
    GridView,
    build_grid_page,
    cursor_for,
    fit_geometry,
    page_slices,
)
from live2d_tui.ui.widgets.halfcell import HalfcellStrip


def compact_count(count: int) -> str:
    """A member count in at most 6 characters: 987, 12,345 → 12.3k, 1.2M."""
    if count < 10_000:
        return f"{count:,}"
    if count < 1_000_000:
        return f"{count / 1000:.1f}k"
    return f"{count / 1_000_000:.1f}M"


def label_row(
    classes: Sequence[int], counts: Sequence[int] | None, tile_cols: int, selected: int | None
) -> Text:
    """The text row under a strip: ``#class count`` per tile, the selected tile reversed.

    Args:
        classes: 0-based slices shown in this strip, left to right.
        counts: Members per slice, or None when classes have no members yet (a random start:
            the label is the class number alone).
        tile_cols: Cells per tile (each label is cut to fit).
        selected: The slice under the cursor, or None.
    """
    row = Text(no_wrap=True, overflow="crop")
    for k in classes:
        count = (counts[k] if k < len(counts) else 0) if counts is not None else None
        text = f"#{k + 1}" if count is None else f"#{k + 1} {compact_count(count)}"
        label = text[: tile_cols - 1].ljust(tile_cols - 1)
        empty = count is not None and count <= 0
        style = "reverse bold" if k == selected else ("dim" if empty else "")
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
        Binding("enter", "open", "Open class", id="grid.open", tooltip="Open the class full size"),
        Binding("pagedown,space", "page(1)", "Next page", show=False),
        Binding("pageup", "page(-1)", "Previous page", show=False),
        Binding(
            "o",
            "toggle_sort",
            "Sort",
            id="grid.sort",
            tooltip="Sort by class number or by member count",
        ),
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
        """The layout for the current size (the page on screen may still have an older one)."""
        self._shown: GridPage | None = None
        """The page whose images are on screen."""
        self._building: tuple[GridData, tuple[int, ...], montage.GridGeometry] | None = None
        """The page a worker is building."""
        self._header = ""
        self.image_generation = 0
        """Counts pictures sent to the screen (new page, new widgets); cursor moves keep it."""

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
        self.workers.cancel_group(self, "grid-mount")
        self._data = None
        self._order = []
        self._shown = None
        self._building = None
        self.query_one("#grid-header", TextRow).set_text(Text())
        self.query_one("#grid-message", Static).update(text)
        self.query_one("#grid-message").display = True
        self.query_one("#grid-body").remove_children()

    def view(self) -> GridView:
        """What decides the page of a new cycle (for :meth:`GridView.page_for` in a thread)."""
        width, height = self._area()
        return GridView(width, height, images.cell_size(), self.by_count, self.selected, self._mode)

    def set_data(
        self,
        data: GridData,
        header: str,
        *,
        page: GridPage | None = None,
        keep_cursor: bool = True,
    ) -> None:
        """Show a cycle's classes. The cursor stays on the same class number when it can.

        Args:
            data: The cycle.
            header: Its metadata line.
            page: The page built for it off the loop (:meth:`GridView.page_for`); used when it is
                still the page wanted, otherwise the page is built in a worker.
            keep_cursor: Keep the class under the cursor (else the first class).
        """
        previous = self.selected if keep_cursor else None
        self._data = data
        self._header = header
        self._order = montage.sort_order(data.counts, data.stack.shape[0], by_count=self.by_count)
        self.query_one("#grid-message").display = False
        self.set_reactive(ClassGrid.cursor, cursor_for(self._order, previous))
        self._refresh_page(page)

    def set_header(self, header: str) -> None:
        """Replace the metadata line."""
        self._header = header
        self._update_header()

    # ---------------------------------------------------------------- layout

    def _area(self) -> tuple[int, int]:
        return max(10, self.size.width), max(4, self.size.height - 2)

    def _fit(self) -> montage.GridGeometry:
        width, height = self._area()
        return fit_geometry(width, height, images.cell_size(), self._order)

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

    def _wanted(self) -> tuple[GridData, tuple[int, ...], montage.GridGeometry] | None:
        """The page the cursor and the size ask for: (cycle, slices, geometry)."""
        if self._data is None or self._geometry is None:
            return None
        return self._data, page_slices(self._order, self.cursor, self._geometry), self._geometry

    def _refresh_page(self, built: GridPage | None = None) -> None:
        """Bring the screen to the wanted page: labels only if its images are shown, ``built``
        if it is that page, else a build in a worker (one at a time; a newer one cancels)."""
        if self._data is None or not self.size.width:
            self._update_header()
            return
        self._geometry = self._fit()
        wanted = self._wanted()
        assert wanted is not None
        if self._shown is not None and self._shown.shows(*wanted):
            self._update_labels()
            self._update_header()
        elif built is not None and built.shows(*wanted):
            self._show_page(built)
        elif self._building is None or not (
            self._building[0] is wanted[0] and self._building[1:] == wanted[1:]
        ):
            self._building = wanted
            self._build_page(*wanted)

    @work(thread=True, exclusive=True, group="grid-page", exit_on_error=False)
    def _build_page(
        self, data: GridData, slices: tuple[int, ...], geometry: montage.GridGeometry
    ) -> None:
        page = build_grid_page(data, slices, geometry, self._mode)
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self._page_built, page)

    def _page_built(self, page: GridPage) -> None:
        self._building = None
        self._refresh_page(page)  # shown if still wanted; else the wanted page is built

    def _show_page(self, page: GridPage) -> None:
        """Put ``page`` on screen: half-cell lines go into the strips already mounted when the
        layout is unchanged (one repaint, no layout); otherwise new image widgets."""
        self._building = None
        shown, self._shown = self._shown, page
        strips = list(self.query(".grid-strip").results(HalfcellStrip))
        if (
            page.lines is not None
            and shown is not None
            and shown.geometry == page.geometry
            and len(strips) == len(page.lines) == len(shown.strips)
        ):
            for widget, lines in zip(strips, page.lines, strict=True):
                widget.set_lines(lines)
            self.image_generation += 1
            self._update_labels()
            self._update_header()
        else:
            self.run_worker(self._mount_page(page), group="grid-mount", exclusive=True)

    def _strip_widget(self, page: GridPage, n: int) -> Widget:
        """Strip ``n`` of ``page`` as one image widget, or as a row of pieces no wider than the
        terminal draws a Sixel image; inside tmux each piece gets its share of the page's
        byte budget (by area)."""
        geometry = page.geometry
        strip = page.strips[n]
        if page.lines is not None:
            return HalfcellStrip(page.lines[n], classes="grid-strip")
        settings = images.sixel_settings() if self._mode is ImageMode.SIXEL else None
        max_width = settings.max_size[0] if settings and settings.max_size else None
        budget = settings.page_bytes if settings else None
        page_area = sum(s.width * s.height for s in page.strips)
        pieces: list[Widget] = []
        for image, tiles in montage.split_strip(strip, geometry, max_width):
            share = image.width * image.height / max(1, page_area)
            piece = images.make_image_widget(
                self._mode, max_bytes=int(budget * share) if budget else None
            )
            piece.image = image  # type: ignore[attr-defined]
            piece.styles.width = tiles * geometry.tile_cols
            piece.styles.height = geometry.tile_rows
            pieces.append(piece)
        if len(pieces) == 1:
            pieces[0].add_class("grid-strip")
            return pieces[0]
        row = Horizontal(*pieces, classes="grid-strip")
        row.styles.width = geometry.columns * geometry.tile_cols
        row.styles.height = geometry.tile_rows
        return row

    async def _mount_page(self, page: GridPage) -> None:
        geometry = page.geometry
        widgets: list[Widget] = []
        for n in range(len(page.strips)):
            image = self._strip_widget(page, n)
            image.styles.width = geometry.columns * geometry.tile_cols
            image.styles.height = geometry.tile_rows
            widgets.append(image)
            widgets.append(TextRow(classes="grid-label"))
        body = self.query_one("#grid-body")
        with self.app.batch_update():  # no frame shows the body empty between the two
            await body.remove_children()
            await body.mount_all(widgets)
            self.image_generation += 1
            self._update_labels()
            self._update_header()

    def redraw_images(self) -> None:
        """Re-send the images (after a resize, reattach or ctrl+l): new widgets, same pixels."""
        images.remeasure_cell_size()
        if self._data is None:
            return
        if self._shown is None or self._fit() != self._shown.geometry:
            self._refresh_page()
        else:
            self.run_worker(self._mount_page(self._shown), group="grid-mount", exclusive=True)

    def _update_labels(self, rows: set[int] | None = None) -> None:
        """Set the label rows under the images on screen (only ``rows``, 0-based, when given)."""
        shown = self._shown
        if self._data is None or shown is None or shown.data is not self._data:
            return
        columns, selected = shown.geometry.columns, self.selected
        labels = list(self.query(".grid-label").results(TextRow))
        for r, label in enumerate(labels):
            if rows is not None and r not in rows:
                continue
            classes = shown.slices[r * columns : (r + 1) * columns]
            counts = self._data.counts if self._data.members_known else None
            label.set_text(label_row(classes, counts, shown.geometry.tile_cols, selected))

    def _update_header(self) -> None:
        lines = [self._header] if self._header else []
        if self._data is not None:
            data = self._data
            note = (
                empty_classes_note(len(data.empty), data.stack.shape[0])
                if data.members_known
                else ""
            )
            lines.append(
                f"page {self.page + 1}/{self.page_count} · "
                f"{'by member count' if self.by_count else 'by class number'} (o) · "
                + (f"{note} · " if note else "")
                + "arrows/hjkl move · enter opens · [ ] cycles"
            )
        header = Text("\n".join(lines), no_wrap=True, overflow="ellipsis")
        self.query_one("#grid-header", TextRow).set_text(header)

    # --------------------------------------------------------------- actions

    def watch_cursor(self, old: int, new: int) -> None:
        shown, wanted = self._shown, self._wanted()
        if shown is None or wanted is None or not shown.shows(*wanted):
            self._refresh_page()  # another page: new images
            return
        # same page: restyle the label rows of the old and the new position, nothing else
        columns = shown.geometry.columns
        rows = {
            shown.slices.index(self._order[p]) // columns
            for p in (old, new)
            if p < len(self._order) and self._order[p] in shown.slices
        }
        self._update_labels(rows=rows)

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
