"""Half-cell encoding off the loop: the same cells as textual-image's half-cell renderer."""

from __future__ import annotations

import numpy as np
from PIL import Image
from rich.console import Console
from rich.segment import Segment
from textual_image.renderable.halfcell import Image as HalfcellRenderable

from live2d_tui.ui.widgets.halfcell import halfcell_lines


def _cells(lines: list[list[Segment]]) -> list[list[tuple[str, object, object]]]:
    """Per cell: character, foreground and background colour (segments split to cells)."""
    rows = []
    for line in lines:
        cells = []
        for segment in line:
            for char in segment.text:
                style = segment.style
                assert style is not None
                cells.append((char, style.color, style.bgcolor))
        rows.append(cells)
    return rows


def test_halfcell_lines_match_textual_image() -> None:
    rng = np.random.default_rng(3)
    image = Image.fromarray(rng.integers(0, 256, (47, 93), dtype=np.uint8), mode="L")
    width, height = 31, 8  # a downscale by a non-integer factor: resampling must agree
    console = Console(width=width, height=height, color_system="truecolor")
    options = console.options.update(width=width, height=height)
    expected = console.render_lines(HalfcellRenderable(image, width, height), options, pad=False)
    ours = [list(strip) for strip in halfcell_lines(image, width, height)]
    assert _cells(ours) == _cells(expected)
    assert all(strip.cell_length == width for strip in halfcell_lines(image, width, height))


def test_halfcell_lines_share_styles_of_equal_cells() -> None:
    image = Image.new("L", (40, 8), color=128)  # one grey: every cell the same style object
    styles = {id(seg.style) for strip in halfcell_lines(image, 20, 4) for seg in strip}
    assert len(styles) == 1
