"""Sixel output of the class grid, as the widgets emit it: greys per image and bytes per page.

    .venv/bin/python benchmarks/bench_sixel.py [cycle_N.mrc ...]

Mounts the real class grid (the UI's widgets, textual-image's placement, our grey encoder) in a
headless app the size of the grid in a 180×50 terminal (126×46 cells, 10×20 px cells), with
xterm's answers (256 colour registers, 1000×1000 px at most), once outside and once inside tmux
(a page budget), and reports what the widgets emit: the images, the distinct greys defined
(``#n;2;r;g;b``) and the page's bytes. Inputs: a smooth gradient, noise classes (the worst
case for Sixel's size) and any class stacks given (e.g. a demo's or a real session's cycle).
"""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from textual.app import App, ComposeResult
from textual.geometry import Region

from live2d_tui.config import ImageMode
from live2d_tui.ui import images, montage
from live2d_tui.ui.sixel import _GreySixelImpl
from live2d_tui.ui.widgets.class_grid import ClassGrid
from live2d_tui.ui.widgets.grid_page import GridData

GRID = (126, 48)  # the grid's 126×46 cells plus its two header rows
_REGISTER = re.compile(r"#\d+;2;(\d+;\d+;\d+)")


class _Grid(App[None]):
    def __init__(self, data: GridData) -> None:
        super().__init__()
        self._data = data

    def compose(self) -> ComposeResult:
        yield ClassGrid(ImageMode.SIXEL, id="grid")

    def on_ready(self) -> None:
        self.query_one(ClassGrid).set_data(self._data, "bench")


def _emitted(app: App[None]) -> list[str]:
    out: list[str] = []
    for widget in app.screen.query(_GreySixelImpl):
        size = widget.size
        for line in widget.render_lines(Region(0, 0, size.width, size.height)):
            out += [s.text for s in line if s.text.startswith("\x1bP")]
    return out


async def _page(stack: np.ndarray) -> list[str]:
    data = GridData.from_stack(1, stack, [100] * stack.shape[0])
    app = _Grid(data)
    async with app.run_test(size=GRID) as pilot:
        grid = app.query_one(ClassGrid)
        for _ in range(200):
            await pilot.pause(0.05)
            if grid.image_generation and _emitted(app):
                break
        await pilot.pause(0.2)
        return _emitted(app)


def _report(name: str, stack: np.ndarray) -> None:
    for in_tmux in (False, True):
        images.set_sixel_settings(images.sixel_settings_for(256, (1000, 1000), in_tmux=in_tmux))
        emitted = asyncio.run(_page(stack))
        greys = [len(set(_REGISTER.findall(d))) for d in emitted]
        total = sum(len(d.encode()) for d in emitted)
        where = "in tmux " if in_tmux else "no tmux "
        print(
            f"{name:28s} {where} {len(emitted)} images, greys per image {min(greys)}-"
            f"{max(greys)}, page {total:,} bytes"
        )


def main() -> None:
    images.pin_cell_size(10, 20)
    gradient = np.tile(np.linspace(0.0, 1.0, 256, dtype=np.float32), (256, 1))[None]
    rng = np.random.default_rng(1)
    _report("gradient (1 class)", gradient)
    _report("noise, 4 classes of 128 px", rng.normal(size=(4, 128, 128)).astype(np.float32))
    _report("noise, 48 classes of 128 px", rng.normal(size=(48, 128, 128)).astype(np.float32))
    for arg in sys.argv[1:]:
        _report(Path(arg).name, montage.load_class_stack(Path(arg)))
    image = Image.fromarray(np.tile(np.linspace(0, 255, 1000).astype(np.uint8), (200, 1)), "L")
    from textual_image._sixel import SixelOptions, image_to_sixels

    before = image_to_sixels(image, SixelOptions(colors=128))
    print(f"textual-image's own quantiser, colors=128: {len(set(_REGISTER.findall(before)))} greys")


if __name__ == "__main__":
    main()
