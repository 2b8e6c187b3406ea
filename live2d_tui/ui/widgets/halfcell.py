"""Half-cell images encoded off the event loop: a picture as ``▀`` cells, built in a thread.

textual-image's ``HalfcellImage`` encodes its picture in ``render()``, on the event loop, each
time a new widget is painted: for a page of 100 classes that is thousands of styled cells, tens
of milliseconds during which keys wait. Here the encoding is a pure function
(:func:`halfcell_lines`) that a thread worker runs, and :class:`HalfcellStrip` only hands out the
finished lines, so a new picture is swapped into an existing widget with one repaint.

Invariants:
- :func:`halfcell_lines` gives the cells textual-image's half-cell renderer gives for the same
  picture and size (same resampling, upper pixel as foreground, lower as background).
- :meth:`HalfcellStrip.set_lines` repaints the widget only; its size is fixed by CSS, so no
  layout pass runs.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from rich.color import Color
from rich.color_triplet import ColorTriplet
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip
from textual.widget import Widget

HALF_BLOCK = "▀"


def halfcell_lines(image: Image.Image, width: int, height: int) -> list[Strip]:
    """``image`` as ``height`` lines of ``width`` half-block cells (pure; call off the loop).

    Each cell shows two pixels of the picture resized to ``width × 2·height``: the upper as the
    foreground of ``▀``, the lower as the background. Styles are shared between equal cells.
    """
    width, height = max(1, width), max(1, height)
    # the resize textual-image's half-cell renderer uses (Pillow's default filter)
    rgb = np.asarray(image.convert("RGB").resize((width, 2 * height))).astype(np.int64)
    packed = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]  # one int per pixel
    # a page holds a few thousand cells but far fewer distinct colours and pairs: build each
    # Color and Style once (Color.from_triplet formats a hex name: most of the cost per cell)
    colors: dict[int, Color] = {}
    styles: dict[tuple[int, int], Style] = {}

    def color(value: int) -> Color:
        found = colors.get(value)
        if found is None:
            triplet = ColorTriplet(value >> 16, (value >> 8) & 0xFF, value & 0xFF)
            found = colors[value] = Color.from_triplet(triplet)
        return found

    lines: list[Strip] = []
    for row in range(height):
        segments: list[Segment] = []
        for pair in zip(packed[2 * row].tolist(), packed[2 * row + 1].tolist(), strict=True):
            style = styles.get(pair)
            if style is None:
                style = styles[pair] = Style(color=color(pair[0]), bgcolor=color(pair[1]))
            segments.append(Segment(HALF_BLOCK, style))
        lines.append(Strip(segments, width))
    return lines


class HalfcellStrip(Widget):
    """Shows lines made by :func:`halfcell_lines`; setting new ones only repaints the widget."""

    def __init__(self, lines: list[Strip] | None = None, *, classes: str = "") -> None:
        super().__init__(classes=classes)
        self._lines = lines or []

    def set_lines(self, lines: list[Strip]) -> None:
        """Show ``lines`` (one repaint, no layout: the widget's size comes from its styles)."""
        self._lines = lines
        self.refresh()

    def render_line(self, y: int) -> Strip:
        # the Line API: Textual crops and caches these, and applies the widget's styles
        if 0 <= y < len(self._lines):
            return self._lines[y]
        return Strip.blank(self.size.width)
