"""Pilot tests of the class selection, rules, export and report keys, and the half-set figures
in the grid and the class view, on the real supervisor and a real classified session."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import starfile
from PIL import Image
from textual.widgets import Input

from live2d_tui.results.quality import read_cached
from live2d_tui.results.selection import read_selection, selection_path
from live2d_tui.ui.app import Live2DApp
from live2d_tui.ui.screens.detail import ClassDetailScreen
from live2d_tui.ui.screens.results import ExportScreen, RulesScreen
from live2d_tui.ui.widgets.class_grid import ClassGrid
from live2d_tui.ui.widgets.frc_plot import FrcPlot

from .ui_helpers import make_app, wait_until

SIZE = (150, 45)


def _app(warp: Path) -> Live2DApp:
    app = make_app(warp)
    assert isinstance(app, Live2DApp)
    return app


def _grid(app: Live2DApp) -> ClassGrid:
    return app.query_one(ClassGrid)


def _ready(app: Live2DApp) -> bool:
    grid = _grid(app)
    return grid.data is not None and grid.image_generation > 0 and grid.data.results is not None


def _with_figures(app: Live2DApp) -> bool:
    data = _grid(app).data
    return data is not None and data.results is not None and data.results.quality is not None


def _labels(app: Live2DApp) -> str:
    return "\n".join(str(w.render()) for w in app.query(".grid-label"))


def _mark(app: Live2DApp, class_number: int) -> str | None:
    data = _grid(app).data
    assert data is not None and data.results is not None
    return data.results.mark(class_number)


async def test_space_marks_persist_atomically_and_survive_a_restart(session_copy: Path) -> None:
    out = session_copy / "classification"
    app = _app(session_copy)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: _ready(app))
        grid = _grid(app)
        grid.focus()
        cycle = grid.data.cycle if grid.data else -1
        generation = grid.image_generation
        await pilot.press("space")
        await wait_until(pilot, lambda: _mark(app, 1) == "good")
        saved = read_selection(out, cycle)
        assert saved is not None and saved.good == [1] and saved.revision == 1
        # the frame is drawn into the images: the page is rebuilt with the mark
        await wait_until(pilot, lambda: grid.image_generation > generation)
        assert grid._shown is not None and grid._shown.marks == ((0, "good"),)
        assert "#1✓" in _labels(app)
        await pilot.press("right", "space", "space")  # class 2: good, then bad
        await wait_until(pilot, lambda: _mark(app, 2) == "bad")
        assert "#2✗" in _labels(app)
        header = str(grid.query_one("#grid-header").render())
        assert "✓ 1 · ✗ 1" in header
    # atomic: the file is complete JSON and no temporary file is left beside it
    assert not list(out.glob(".*.tmp"))
    assert selection_path(out, cycle).is_file()
    app = _app(session_copy)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: _ready(app))
        assert _mark(app, 1) == "good" and _mark(app, 2) == "bad" and _mark(app, 3) is None
        assert "#1✓" in _labels(app) and "#2✗" in _labels(app)
        _grid(app).focus()
        await pilot.press("space")  # good → bad
        await wait_until(pilot, lambda: _mark(app, 1) == "bad")
        await pilot.press("space")  # bad → unmarked
        await wait_until(pilot, lambda: _mark(app, 1) is None)
    saved = read_selection(out, cycle)
    assert saved is not None and saved.good == [] and saved.bad == [2]


async def test_figures_arrive_for_the_shown_cycle_and_sort_by_resolution(
    session_copy: Path,
) -> None:
    out = session_copy / "classification"
    app = _app(session_copy)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: _ready(app))
        # no estimate was cached: the screen asks for it, the background process computes it
        await wait_until(pilot, lambda: _with_figures(app), timeout=120)
        grid = _grid(app)
        assert grid.data is not None and grid.data.results is not None
        quality = grid.data.results.quality
        assert quality is not None
        assert read_cached(out, grid.data.cycle) == quality
        header = str(grid.query_one("#grid-header").render())
        assert f"half-set Å from ≤ {quality.cap:,} per class" in header
        figures = {c.class_number: c.resolution for c in quality.classes}
        labels = _labels(app)
        for k, res in figures.items():
            assert (f"{res:.1f}Å" if res is not None else "–") in labels.split(f"#{k}")[1][:20]
        grid.focus()
        await pilot.press("o", "o")
        assert grid.sort == "resolution"
        assert "by resolution" in str(grid.query_one("#grid-header").render())
        ranked = [figures.get(k + 1) for k in grid.order]
        known = [f for f in ranked if f is not None]
        assert known == sorted(known)
        assert ranked[: len(known)] == known  # classes without a figure last
        # an older cycle's estimate is asked for when it is shown
        snap = app.session.snapshot
        assert snap is not None
        older = snap.cycles[-2].number
        await pilot.press("[")
        await wait_until(pilot, lambda: grid.data is not None and grid.data.cycle == older)
        if grid.data is not None and grid.data.members_known:
            await wait_until(pilot, lambda: _with_figures(app), timeout=120)
            assert read_cached(out, older) is not None


async def test_class_view_quality_line_plot_and_space(session_copy: Path) -> None:
    out = session_copy / "classification"
    app = _app(session_copy)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: _ready(app))
        await wait_until(pilot, lambda: _with_figures(app), timeout=120)
        grid = _grid(app)
        grid.focus()
        cycle = grid.data.cycle if grid.data else -1
        await pilot.press("right", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ClassDetailScreen))
        screen = app.screen
        assert isinstance(screen, ClassDetailScreen) and screen.index == 1
        line = str(screen.query_one("#detail-quality").render())
        assert " members · " in line and " used · " in line and "mean score" in line
        assert "half-set" in line
        assert screen.query_one(FrcPlot).display
        await pilot.press("space")
        await wait_until(pilot, lambda: "good" in str(screen.query_one("#detail-caption").render()))
        saved = read_selection(out, cycle)
        assert saved is not None and saved.good == [2]
        await pilot.press("l", "space", "space")  # class 3: bad
        await wait_until(pilot, lambda: "bad" in str(screen.query_one("#detail-caption").render()))
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, ClassDetailScreen))
        assert grid.selected == 2
        assert "#2✓" in _labels(app) and "#3✗" in _labels(app)


async def test_rules_select_the_right_classes(session_copy: Path) -> None:
    out = session_copy / "classification"
    app = _app(session_copy)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: _ready(app))
        await wait_until(pilot, lambda: _with_figures(app), timeout=120)
        grid = _grid(app)
        grid.focus()
        data = grid.data
        assert data is not None and data.results is not None and data.results.quality
        counts = data.counts
        threshold = sorted(counts)[len(counts) // 2]
        await pilot.press("R")
        await wait_until(pilot, lambda: isinstance(app.screen, RulesScreen))
        app.screen.query_one("#min-members", Input).value = str(threshold)
        await pilot.press("enter")
        expected_good = [k + 1 for k, n in enumerate(counts) if n >= threshold]
        await wait_until(
            pilot,
            lambda: (
                read_selection(out, data.cycle) is not None
                and read_selection(out, data.cycle).good == expected_good
            ),  # type: ignore[union-attr]
        )
        saved = read_selection(out, data.cycle)
        assert saved is not None
        assert saved.bad == [k + 1 for k, n in enumerate(counts) if n < threshold]
        # both rules: members and a figure finer than the median figure
        figures = {c.class_number: c.resolution for c in data.results.quality.classes}
        known = sorted(f for f in figures.values() if f is not None)
        limit = known[len(known) // 2] + 0.05 if known else 50.0
        await pilot.press("R")
        await wait_until(pilot, lambda: isinstance(app.screen, RulesScreen))
        app.screen.query_one("#min-members", Input).value = "1"
        app.screen.query_one("#better-than", Input).value = f"{limit:.2f}"
        await pilot.press("enter")
        want = [
            k
            for k, f in figures.items()
            if f is not None and f < float(f"{limit:.2f}") and counts[k - 1] >= 1
        ]
        await wait_until(
            pilot,
            lambda: read_selection(out, data.cycle).good == want,  # type: ignore[union-attr]
        )
        # a rule that makes no sense is refused in the dialog
        await pilot.press("R")
        await wait_until(pilot, lambda: isinstance(app.screen, RulesScreen))
        await pilot.press("enter")
        assert isinstance(app.screen, RulesScreen)
        assert "at least one rule" in str(app.screen.query_one("#problem").render())
        await pilot.press("escape")


async def test_export_from_the_ui_writes_new_files_into_exports(session_copy: Path) -> None:
    out = session_copy / "classification"
    app = _app(session_copy)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: _ready(app))
        grid = _grid(app)
        grid.focus()
        await pilot.press("E")  # nothing marked good: says so, no dialog
        await pilot.pause()
        assert not isinstance(app.screen, ExportScreen)
        await pilot.press("space", "right", "right", "space")  # classes 1 and 3 good
        await wait_until(pilot, lambda: _mark(app, 3) == "good")
        data = grid.data
        assert data is not None
        for n in (1, 2):
            await pilot.press("E")
            await wait_until(pilot, lambda: isinstance(app.screen, ExportScreen))
            await pilot.press("enter")  # Export has the focus: RELION, absolute paths
            await wait_until(pilot, lambda n=n: len(list((out / "exports").glob("*.star"))) == n)
        stars = sorted((out / "exports").glob("*.star"))
        assert [p.name for p in stars] == [
            f"cycle_{data.cycle}_classes_1-3_relion.star",
            f"cycle_{data.cycle}_classes_1-3_relion_2.star",
        ]
        assert stars[0].read_bytes() == stars[1].read_bytes()
        particles = starfile.read(stars[0])["particles"]
        assert len(particles) == data.counts[0] + data.counts[2]
        await pilot.press("P")
        await wait_until(
            pilot, lambda: (out / "exports" / f"cycle_{data.cycle}_classes.png").exists()
        )
        with Image.open(out / "exports" / f"cycle_{data.cycle}_classes.png") as image:
            assert image.format == "PNG" and image.width > 0
            pixels = np.asarray(image.convert("RGB"))
        assert (pixels == (46, 160, 67)).all(axis=-1).any()  # the selected classes' frames
