"""Full-size view of one class: the whole panel for the image, caption with members and fraction.

← → (h l) move between classes, Esc goes back (dismissing with the class shown, so the grid's
cursor follows). The image is built off the event loop; ctrl+l re-sends it. The main screen's
other keys work here too and act on the main screen below (:func:`~live2d_tui.ui.keys.carried`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from PIL import Image
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Center, Vertical
from textual.dom import DOMNode
from textual.screen import Screen
from textual.widgets import Footer, Static
from textual.worker import get_current_worker

from live2d_tui.config import ImageMode
from live2d_tui.supervisor import CycleRecord
from live2d_tui.ui import images, keys, montage
from live2d_tui.ui.text import class_caption
from live2d_tui.ui.widgets.grid_page import GridData


class ClassDetailScreen(Screen[int]):
    """One class at the size of the panel."""

    DEFAULT_CSS = """
    ClassDetailScreen #detail-caption { height: 1; padding: 0 1; text-style: bold; }
    ClassDetailScreen #detail-box { height: 1fr; align: center middle; }
    ClassDetailScreen #detail-center { height: 1fr; }
    """

    OWN_BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "back", "Back", tooltip="Back to the class grid"),
        Binding("left,h", "step(-1)", "Previous class"),
        Binding("right,l", "step(1)", "Next class"),
        Binding("ctrl+l", "redraw", "Redraw images"),
    ]
    """The keys of this screen (the help lists these)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        *OWN_BINDINGS,
        *keys.carried(keys.MAIN_BINDINGS, over=OWN_BINDINGS),
    ]

    def __init__(
        self,
        data: GridData,
        record: CycleRecord,
        order: Sequence[int],
        index: int,
        mode: ImageMode,
        *,
        below: DOMNode | None = None,
    ) -> None:
        """Args:
        data: The cycle's classes as the grid has them.
        record: The cycle.
        order: The grid's display order (0-based slices).
        index: The slice to show first.
        mode: How images are drawn.
        below: The screen this one is pushed over, which the carried keys act on.
        """
        super().__init__()
        self._below = below
        self._data = data
        self._record = record
        self._order = list(order)
        self._pos = self._order.index(index) if index in self._order else 0
        self._mode = mode
        self._image: Image.Image | None = None

    @property
    def index(self) -> int:
        """The 0-based slice shown."""
        return self._order[self._pos]

    def compose(self) -> ComposeResult:
        yield Static("", markup=False, id="detail-caption")
        with Vertical(id="detail-box"), Center(id="detail-center"):
            pass
        yield Footer()

    def on_mount(self) -> None:
        self._show()

    def _show(self) -> None:
        self.query_one("#detail-caption", Static).update(
            class_caption(self._record, self.index, self._data.counts)
            + f"   ({self._pos + 1}/{len(self._order)} · ← → · Esc)"
        )
        self._build(self.index)

    @work(thread=True, exclusive=True, group="detail", exit_on_error=False)
    def _build(self, index: int) -> None:
        image = montage.build_detail(
            self._data.stack, index, self._data.scale, empty=index in self._data.empty
        )
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self._schedule_mount, image)

    def _schedule_mount(self, image: Image.Image) -> None:
        self.run_worker(self._mount_image(image), group="detail-mount", exclusive=True)

    async def _mount_image(self, image: Image.Image) -> None:
        self._image = image
        box = self.query_one("#detail-center")
        await box.remove_children()
        sixel = images.sixel_settings() if self._mode is ImageMode.SIXEL else None
        widget = images.make_image_widget(
            self._mode, id="detail-image", max_bytes=sixel.page_bytes if sixel else None
        )
        # "auto" keeps the aspect ratio inside the panel: the whole height for the image
        widget.styles.height = "100%"
        widget.styles.width = "auto"
        if sixel is not None and sixel.max_size is not None:  # larger is not drawn at all
            cell_w, cell_h = images.cell_size()
            widget.styles.max_height = max(1, sixel.max_size[1] // max(1, cell_h))
            widget.styles.max_width = max(1, sixel.max_size[0] // max(1, cell_w))
        widget.image = image  # type: ignore[attr-defined]
        await box.mount(widget)

    def action_step(self, delta: int) -> None:
        """Show the previous/next class in the grid's order."""
        self._pos = max(0, min(len(self._order) - 1, self._pos + delta))
        self._show()

    def action_back(self) -> None:
        """Back to the grid, its cursor on this class."""
        self.dismiss(self.index)

    async def action_below(self, action: str) -> None:
        """Run ``action`` on the screen below (a key of the main screen pressed here)."""
        if self._below is not None:
            await self.app.run_action(action, self._below)

    def action_redraw(self) -> None:
        """Re-send the image (new widget, same pixels)."""
        images.remeasure_cell_size()
        if self._image is not None:
            self._schedule_mount(self._image)
