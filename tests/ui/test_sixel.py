"""Sixel class averages: every grey level the terminal's registers allow, pages under tmux's
1 MB limit, and images no larger than the terminal draws. The counts are taken from the Sixel
stream the widgets emit (the ``#n;2;r;g;b`` register definitions), not from our own numbers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import mrcfile
import numpy as np
import pytest
from PIL import Image
from textual.app import App, ComposeResult
from textual.geometry import Region

from live2d_tui.config import ImageMode
from live2d_tui.supervisor import Supervisor
from live2d_tui.ui import images, montage
from live2d_tui.ui.app import Live2DApp
from live2d_tui.ui.images import ImageChoice, SixelSettings
from live2d_tui.ui.sixel import (
    PERCENT_LEVELS,
    RESERVED_REGISTERS,
    _GreySixelImpl,
    encode_grey,
    grey_levels,
    quantise_grey,
)
from live2d_tui.ui.widgets.class_grid import ClassGrid

from .ui_helpers import TEST_CONFIG, wait_until

_REGISTER = re.compile(r"#(\d+);2;(\d+);(\d+);(\d+)")


def _palette(data: str) -> set[tuple[int, int, int]]:
    """The distinct colours the stream defines (register definitions ``#n;2;r;g;b``)."""
    return {(int(r), int(g), int(b)) for _, r, g, b in _REGISTER.findall(data)}


def _registers(data: str) -> set[int]:
    return {int(n) for n, *_ in _REGISTER.findall(data)}


def _gradient(width: int = 600, height: int = 120) -> Image.Image:
    return Image.fromarray(np.tile(np.linspace(0, 255, width).astype(np.uint8), (height, 1)), "L")


@pytest.fixture
def sixel_settings() -> Iterator[None]:
    """Restore the module's Sixel settings after a test changes them."""
    saved = images.sixel_settings()
    yield
    images.set_sixel_settings(saved)


def _emitted(app: App[None]) -> list[str]:
    """The Sixel sequences the Sixel widgets on screen emit."""
    out: list[str] = []
    for widget in app.screen.query(_GreySixelImpl):
        size = widget.size
        for line in widget.render_lines(Region(0, 0, size.width, size.height)):
            out += [s.text for s in line if s.text.startswith("\x1bP")]
    return out


class _OneImage(App[None]):
    def __init__(self, image: Image.Image) -> None:
        super().__init__()
        self._image = image

    def compose(self) -> ComposeResult:
        widget = images.make_image_widget(ImageMode.SIXEL, id="image")
        widget.image = self._image  # type: ignore[attr-defined]
        widget.styles.width = self._image.width // 10
        widget.styles.height = self._image.height // 20
        yield widget


@pytest.mark.parametrize(("registers", "levels"), [(256, 101), (1024, 101), (64, 56), (16, 8)])
async def test_a_gradient_gets_every_grey_the_registers_allow(
    sixel_settings: None, registers: int, levels: int
) -> None:
    # textual-image's own quantiser gave about 16 greys, whatever the colour count asked
    images.set_sixel_settings(images.sixel_settings_for(registers, None, in_tmux=False))
    app = _OneImage(_gradient())
    async with app.run_test(size=(80, 20)) as pilot:
        await wait_until(pilot, lambda: bool(_emitted(app)))
        (data,) = _emitted(app)
    colours = _palette(data)
    assert len(colours) == levels
    assert all(r == g == b for r, g, b in colours)  # greys only
    assert max(_registers(data)) < registers - RESERVED_REGISTERS  # marks keep their registers
    if registers >= 256:
        assert len(colours) >= 100 and {c[0] for c in colours} == set(range(PERCENT_LEVELS))


def test_levels_follow_the_registers_and_keep_some_free() -> None:
    assert grey_levels(256) == PERCENT_LEVELS == 101
    assert grey_levels(64) == 64 - RESERVED_REGISTERS
    assert grey_levels(4) == 2


def test_quantising_maps_each_grey_to_its_sixel_percent() -> None:
    # at 101 levels a grey v lands on the percent Sixel itself would round it to
    values = np.arange(256, dtype=np.uint8).reshape(16, 16)
    paletted = quantise_grey(Image.fromarray(values, "L"), PERCENT_LEVELS)
    palette = paletted.getpalette()
    assert palette is not None
    shown = np.asarray(paletted).ravel()
    percents = [round(palette[3 * int(i)] * 100 / 255) for i in shown]
    assert percents == [(int(v) * 100 + 127) // 255 for v in values.ravel()]


def test_xtsmgraphics_answers_are_read() -> None:
    answer = "\x1b[?1;0;256S\x1b[?2;0;1000;1000S\x1b[?63;1;2;4c"
    assert images.parse_sixel_graphics(answer) == (256, (1000, 1000))
    assert images.parse_sixel_graphics("\x1b[?63;4c") == (None, None)
    quiet = images.sixel_settings_for(None, None, in_tmux=True)
    assert quiet.levels == 101 and quiet.max_size is None and quiet.page_bytes
    assert images.sixel_settings_for(16, (800, 600), in_tmux=False) == SixelSettings(
        levels=8, max_size=(800, 600), page_bytes=None
    )


def test_a_byte_budget_takes_levels_off_until_the_image_fits() -> None:
    rng = np.random.default_rng(3)
    noise = Image.fromarray(rng.integers(0, 256, (200, 600), dtype=np.uint8), "L")
    full = encode_grey(noise, 101)
    limited = encode_grey(noise, 101, max_bytes=len(full) // 2)
    assert len(limited) <= len(full) // 2 < len(full)
    assert len(_palette(limited)) < len(_palette(full)) == 101


def test_a_strip_wider_than_the_terminal_draws_is_cut_at_tile_boundaries() -> None:
    g = montage.GridGeometry(columns=4, rows=1, tile_cols=31, tile_rows=16, cell_px=(10, 20))
    strip = Image.new("L", (1240, 320))
    pieces = montage.split_strip(strip, g, 1000)
    assert [(p.size, tiles) for p, tiles in pieces] == [((930, 320), 3), ((310, 320), 1)]
    assert montage.split_strip(strip, g, None) == [(strip, 4)]


def _noise_session(session: Path) -> None:
    """Replace every cycle's class averages by noise: the worst case for Sixel's size."""
    rng = np.random.default_rng(1)
    for path in (session / "classification").glob("cycle_*.mrc"):
        k, box = montage.load_class_stack(path).shape[:2]
        with mrcfile.new(path, overwrite=True) as mrc:
            mrc.set_data(rng.normal(size=(k, box, box)).astype(np.float32))


@pytest.mark.parametrize("in_tmux", [True, False], ids=["tmux", "no-tmux"])
async def test_a_full_180_column_page_in_sixel(
    session_copy: Path, sixel_settings: None, in_tmux: bool
) -> None:
    # xterm's answers (256 registers, 1000×1000 px at most); noise classes in the largest tiles
    _noise_session(session_copy)
    images.set_sixel_settings(images.sixel_settings_for(256, (1000, 1000), in_tmux=in_tmux))
    choice = ImageChoice(ImageMode.SIXEL, "test")
    app = Live2DApp(Supervisor(TEST_CONFIG, warp_folder=session_copy), images=choice)
    async with app.run_test(size=(180, 50)) as pilot:
        grid = app.query_one(ClassGrid)
        await wait_until(pilot, lambda: grid.image_generation > 0 and bool(_emitted(app)))
        await pilot.pause()
        emitted = _emitted(app)
        geometry = montage.GridGeometry.fit(
            grid.size.width, grid.size.height - 2, (10, 20), n_classes=len(grid.order)
        )
        # the grid uses the width (five 24-cell tiles left a third of it empty)
        assert geometry.columns * geometry.tile_cols > grid.size.width - geometry.columns
        assert len(grid.order) <= geometry.per_page
        widths = [int(d.split('"1;1;')[1].split(";")[0]) for d in emitted]
        assert max(widths) <= 1000  # wider images are not drawn by xterm
        total = sum(len(d.encode()) for d in emitted)
        if in_tmux:
            assert total < 1_000_000, total  # tmux < 3.6 drops a larger sequence
        else:  # outside tmux nothing is given up (a strip of empty classes has few greys)
            assert max(len(_palette(d)) for d in emitted) == 101
