"""Pilot tests of every control and key, on the real supervisor and a real simulated session."""

from __future__ import annotations

import os
import re
from dataclasses import replace
from pathlib import Path

import pytest
from textual.geometry import Region
from textual.widgets import Button, Footer, Input, Log, OptionList, Select, TabbedContent
from textual.widgets._footer import FooterKey

from live2d_tui.events import SessionStatus
from live2d_tui.supervisor.lock import OutputLock
from live2d_tui.supervisor.state import load_state, save_state
from live2d_tui.ui.app import Live2DApp
from live2d_tui.ui.screens.detail import ClassDetailScreen
from live2d_tui.ui.screens.dialogs import (
    ConfirmScreen,
    CyclePicker,
    HelpScreen,
    QuitScreen,
    WarpFolderScreen,
)
from live2d_tui.ui.widgets.class_grid import ClassGrid
from live2d_tui.ui.widgets.job_bar import JobBar
from live2d_tui.ui.widgets.session_panel import SessionPanel
from live2d_tui.ui.widgets.settings_form import SettingsForm

from .ui_helpers import copy_session, lengthen_job, make_app, wait_until

SIZE = (150, 45)


def _app(warp: Path) -> Live2DApp:
    app = make_app(warp)
    assert isinstance(app, Live2DApp)
    return app


def _grid_ready(app: Live2DApp) -> bool:
    grid = app.query_one(ClassGrid)
    return grid.data is not None and grid.image_generation > 0


def _status(app: Live2DApp) -> SessionStatus | None:
    return app.session.snapshot.status if app.session.snapshot is not None else None


def _shows(app: Live2DApp, cycle: int) -> bool:
    data = app.query_one(ClassGrid).data
    return data is not None and data.cycle == cycle


def _label_text(app: Live2DApp) -> str:
    return "\n".join(str(w.render()) for w in app.query(".grid-label"))


async def test_main_screen_shows_session_and_latest_cycle(session_copy: Path) -> None:
    app = _app(session_copy)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: _grid_ready(app))
        snap = app.session.snapshot
        assert snap is not None and snap.status is SessionStatus.STOPPED
        grid = app.query_one(ClassGrid)
        assert grid.data is not None and grid.data.cycle == snap.cycles[-1].number
        assert grid.data.stack.shape[0] == 6
        labels = _label_text(app)
        assert "#1 " in labels and "#6 " in labels
        panel = str(app.query_one("#session").render())
        assert "Live 2D Classification" in panel and "Model" in panel
        # job bar: idle → start buttons on, stop/abort off
        assert not app.query_one("#start-now", Button).disabled
        assert not app.query_one("#start-auto", Button).disabled
        assert app.query_one("#stop", Button).disabled
        assert app.query_one("#abort", Button).disabled


async def test_cursor_moves_without_resending_images(session_copy: Path) -> None:
    app = _app(session_copy)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: _grid_ready(app))
        grid = app.query_one(ClassGrid)
        grid.focus()
        generation = grid.image_generation
        strips = list(app.query(".grid-strip"))
        columns = grid._geometry.columns if grid._geometry else 1
        await pilot.press("right")
        assert grid.selected == 1
        await pilot.press("l")
        assert grid.selected == 2
        await pilot.press("h", "left")
        assert grid.selected == 0
        await pilot.press("down")
        assert grid.cursor == min(columns, 5)
        await pilot.press("k")
        assert grid.cursor == 0
        await pilot.press("j", "up")
        assert grid.cursor == 0
        await pilot.pause()
        assert grid.image_generation == generation
        assert list(app.query(".grid-strip")) == strips  # the very same image widgets
        # ctrl+l re-sends the images: new widgets
        await pilot.press("ctrl+l")
        await wait_until(pilot, lambda: grid.image_generation > generation)


async def test_cursor_move_repaints_only_the_changed_label_rows(session_copy: Path) -> None:
    # What a cursor move sends to the terminal: the screen regions repainted must be the label
    # rows it changes, never image cells (for Sixel/TGP that would re-send the images; half-cell
    # images are most of the screen's cells) and not the rows it left alone.
    app = _app(session_copy)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: _grid_ready(app))
        grid = app.query_one(ClassGrid)
        grid.focus()
        await pilot.pause()
        labels = list(app.query(".grid-label"))
        assert len(labels) >= 2  # needs a row the cursor does not touch
        compositor = app.screen._compositor
        repainted: list[Region] = []
        render_partial_update = compositor.render_partial_update

        def spy() -> object:
            repainted.extend(compositor._dirty_regions)
            return render_partial_update()

        compositor.render_partial_update = spy  # type: ignore[method-assign]
        columns = grid._geometry.columns if grid._geometry else 1
        await pilot.press("right")
        await pilot.pause()
        assert grid.selected == 1
        assert repainted and Region.from_union(repainted) == labels[0].region
        repainted.clear()
        await pilot.press("down")  # to the second row: both rows change, nothing else
        await pilot.pause()
        assert grid.cursor == 1 + columns
        assert Region.from_union(repainted) == labels[0].region.union(labels[1].region)
        assert not any(
            r.overlaps(strip.region) for r in repainted for strip in app.query(".grid-strip")
        )


async def test_new_cycle_swaps_images_into_the_same_strips(session_copy: Path) -> None:
    # The cycle's page is read, built and encoded in one worker; when the layout is unchanged
    # the loop only puts the new lines into the strips on screen (no new widgets, no layout).
    app = _app(session_copy)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: _grid_ready(app))
        grid = app.query_one(ClassGrid)
        cycles = app.session.snapshot.cycles if app.session.snapshot else ()
        strips = list(app.query(".grid-strip"))
        before = [list(strip.render_line(1)) for strip in strips]  # type: ignore[attr-defined]
        generation = grid.image_generation
        await pilot.press("left_square_bracket")  # an older cycle, not cached: read from disk
        await wait_until(pilot, lambda: grid.image_generation > generation)
        assert _shows(app, cycles[-2].number)
        assert grid.image_generation == generation + 1
        assert list(app.query(".grid-strip")) == strips
        after = [list(strip.render_line(1)) for strip in strips]  # type: ignore[attr-defined]
        assert after != before  # the other cycle's pixels
        assert f"Cycle {cycles[-2].number} ·" in str(grid.query_one("#grid-header").render())


async def test_session_panel_updates_only_when_its_text_changes(session_copy: Path) -> None:
    # each core event brings a snapshot; an unchanged panel must not ask for a layout pass
    app = _app(session_copy)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: _grid_ready(app))
        panel = app.query_one(SessionPanel)
        updates: list[object] = []
        update = panel.update

        def spy(*args: object, **kwargs: object) -> None:
            updates.append(args)
            update(*args, **kwargs)  # type: ignore[arg-type]

        panel.update = spy  # type: ignore[method-assign]
        snap = app.session.supervisor.snapshot()
        panel.show(snap)
        assert updates == []
        panel.show(replace(snap, status=SessionStatus.WAITING))
        assert len(updates) == 1
        assert "Waiting" in str(panel.render())


async def test_enter_opens_detail_and_arrows_move(session_copy: Path) -> None:
    app = _app(session_copy)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: _grid_ready(app))
        grid = app.query_one(ClassGrid)
        grid.focus()
        await pilot.press("right", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ClassDetailScreen))
        screen = app.screen
        assert isinstance(screen, ClassDetailScreen)
        assert screen.index == 1
        await wait_until(pilot, lambda: bool(screen.query("#detail-image")))
        caption = str(screen.query_one("#detail-caption").render())
        assert "class 2 of 6" in caption and "members" in caption and "%" in caption
        await pilot.press("right")
        assert screen.index == 2
        await pilot.press("left", "left")
        assert screen.index == 0
        await pilot.press("l")
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, ClassDetailScreen))
        assert grid.selected == 1  # the grid follows the class last shown


async def test_main_screen_keys_work_in_the_class_view(session_copy: Path) -> None:
    # they were app keys; now the main screen's, carried into the class view pushed over it
    app = _app(session_copy)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: _grid_ready(app))
        cycles = app.session.snapshot.cycles if app.session.snapshot else ()
        app.query_one(ClassGrid).focus()
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ClassDetailScreen))
        await pilot.press("left_square_bracket")  # acts on the grid below
        assert app.main_screen.shown_cycle == cycles[-2].number
        await pilot.press("2")
        assert app.query_one(TabbedContent).active == "output-tab"
        assert isinstance(app.screen, ClassDetailScreen)
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen))
        await pilot.press("escape")
        await pilot.press("q")  # the class view's own q goes back, it does not quit
        await wait_until(pilot, lambda: app.screen is app.main_screen)
        assert app.is_running


async def test_empty_classes_are_explained_on_screen(session_copy: Path) -> None:
    # the demo's first job left 3-4 of 8 classes empty, with nothing on screen saying why
    out = session_copy / "classification"
    loaded = load_state(out)
    assert loaded is not None
    last = loaded.state.cycles[-1]
    counts = (0, 0, *last.particle_count_per_class[2:])  # class 1 lost its members
    cycles = (*loaded.state.cycles[:-1], replace(last, particle_count_per_class=counts))
    save_state(out, replace(loaded.state, cycles=cycles))
    app = _app(session_copy)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: _grid_ready(app))
        header = str(app.query_one(ClassGrid).query_one("#grid-header").render())
        empty = sum(1 for c in counts[1:] if c == 0)  # the engine may have emptied others
        assert f"{empty} of 6 classes empty (crossed): no particle fits them best" in header


async def test_sort_by_count(session_copy: Path) -> None:
    app = _app(session_copy)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: _grid_ready(app))
        grid = app.query_one(ClassGrid)
        grid.focus()
        assert grid.order == list(range(6))
        await pilot.press("o")
        assert grid.by_count
        assert grid.data is not None
        counts = [grid.data.counts[k] for k in grid.order]
        assert counts == sorted(counts, reverse=True)
        assert "by member count" in str(grid.query_one("#grid-header").render())
        await pilot.press("o")
        assert grid.order == list(range(6))


async def test_history_keys_and_picker(session_copy: Path) -> None:
    app = _app(session_copy)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: _grid_ready(app))
        grid = app.query_one(ClassGrid)
        cycles = app.session.snapshot.cycles if app.session.snapshot else ()
        assert len(cycles) >= 3
        latest = cycles[-1].number
        await pilot.press("left_square_bracket")
        assert app.main_screen.shown_cycle == cycles[-2].number
        await wait_until(pilot, lambda: _shows(app, cycles[-2].number))
        assert "1 newer" in str(grid.query_one("#grid-header").render())
        await pilot.press("right_square_bracket")
        assert app.main_screen.shown_cycle is None
        await wait_until(pilot, lambda: _shows(app, latest))
        await pilot.press("left_square_bracket", "left_square_bracket", "f")
        assert app.main_screen.shown_cycle is None
        await pilot.press("c")
        await wait_until(pilot, lambda: isinstance(app.screen, CyclePicker))
        options = app.screen.query_one(OptionList)
        assert options.option_count == len(cycles)
        assert "cycle" in str(options.get_option_at_index(0).prompt)
        await pilot.press("end", "enter")  # the oldest cycle
        await wait_until(pilot, lambda: not isinstance(app.screen, CyclePicker))
        assert app.main_screen.shown_cycle == cycles[0].number


async def test_tabs_job_output_and_help(session_copy: Path) -> None:
    app = _app(session_copy)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: _grid_ready(app))
        await pilot.press("2")
        assert app.query_one(TabbedContent).active == "output-tab"
        log = app.query_one(Log)
        await wait_until(pilot, lambda: log.line_count > 0)
        assert any("Cycle" in line for line in log.lines)
        assert "No cycle running" in str(app.query_one("#progress-line").render())
        await pilot.press("1")
        assert app.query_one(TabbedContent).active == "classes-tab"
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen))
        help_text = str(app.screen.query_one("#help-text").render())
        lines = [line.strip() for line in help_text.splitlines()]
        for key in ("g", "a", "x", "X", "[", "]", "c", "f", "w", "ctrl+l", "enter", "o", "q"):
            assert any(line.startswith((f"{key} ", f"{key}, ")) for line in lines), key
        assert "Images: halfcell" in help_text
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, HelpScreen))


async def test_help_is_grouped_by_screen(session_copy: Path) -> None:
    app = _app(session_copy)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: _grid_ready(app))
        sections = dict(app.help_sections())
        titles = list(sections)
        assert [t.split(" (")[0] for t in titles] == [
            "Main screen", "Class grid", "One class", "Dialogs",
        ]  # fmt: skip
        main, grid, detail = (dict(sections[t]) for t in titles[:3])
        # each key once per screen: q and ctrl+q quit together, one ctrl+l, one row of moves
        for rows in sections.values():
            keys = [k for row_keys, _ in rows for k in row_keys.split(", ")]
            assert len(keys) == len(set(keys)), keys
        assert "Quit" in main["q, ctrl+q"] and "Back" in detail["esc, q"]
        assert (
            "Previous class" in detail["←, h"] and "Move between classes" in grid["arrows, h j k l"]
        )
        assert not any("Previous class" in d or d == "Left" for d in main.values())
        assert not any(k.startswith("left") for k in grid)
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen))
        widget = app.screen.query_one("#help-text")
        text = str(widget.render())
        assert all(title in text for title in titles)
        assert max(len(line) for line in text.splitlines()) <= widget.size.width  # no wrapping
        assert text.index("Main screen") < text.index("Class grid") < text.index("One class")


@pytest.mark.parametrize("width", [80, 120, 200])
async def test_footer_keeps_help_and_quit_visible(session_copy: Path, width: int) -> None:
    # the two keys a newcomer needs most: cut off at 120 columns before
    app = _app(session_copy)
    async with app.run_test(size=(width, 40)) as pilot:
        await wait_until(pilot, lambda: _grid_ready(app))
        await pilot.pause()
        footer = app.screen.query_one(Footer)
        keys = {key.key: key for key in footer.query(FooterKey)}
        palette = next(k for k in keys.values() if k.has_class("-command-palette"))
        for name in ("question_mark", "q"):
            region = keys[name].region
            assert region.width > 0 and region.right <= palette.region.x, (name, region)
            assert region.right <= footer.region.right


async def test_log_follows_appended_lines(session_copy: Path) -> None:
    app = _app(session_copy)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: _grid_ready(app))
        log = app.query_one(Log)
        await wait_until(pilot, lambda: log.line_count > 0)
        with (session_copy / "classification" / "live2d.log").open("a") as fh:
            fh.write("a line appended by another writer\n")
        await wait_until(pilot, lambda: log.lines[-1] == "a line appended by another writer")


async def test_warp_folder_dialog_validates_inline(session_copy: Path, tmp_path: Path) -> None:
    app = _app(session_copy)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: _grid_ready(app))
        await pilot.press("w")
        await wait_until(pilot, lambda: isinstance(app.screen, WarpFolderScreen))
        dialog = app.screen
        field = dialog.query_one("#warp-input", Input)
        field.value = str(tmp_path / "does-not-exist")
        await pilot.press("enter")
        error = dialog.query_one("#warp-error")
        await wait_until(pilot, lambda: "⚠" in str(error.render()))
        assert isinstance(app.screen, WarpFolderScreen)  # stays open
        field.value = ""
        await pilot.press("enter")
        await wait_until(pilot, lambda: "Type a session name" in str(error.render()))
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, WarpFolderScreen))
        assert app.session.snapshot is not None and app.session.snapshot.warp_folder == session_copy


async def test_warp_folder_dialog_switches_session(
    session_copy: Path, fresh_session: Path, tmp_path: Path
) -> None:
    other = copy_session(fresh_session, tmp_path / "other")
    app = _app(session_copy)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: _grid_ready(app))
        await pilot.press("w")
        await wait_until(pilot, lambda: isinstance(app.screen, WarpFolderScreen))
        app.screen.query_one("#warp-input", Input).value = str(other)
        await pilot.press("enter")
        await wait_until(pilot, lambda: not isinstance(app.screen, WarpFolderScreen))
        await wait_until(pilot, lambda: app.session.supervisor.snapshot().warp_folder == other)
        grid = app.query_one(ClassGrid)
        await wait_until(
            pilot, lambda: "No classes yet" in str(grid.query_one("#grid-message").render())
        )


async def test_before_first_cycle_says_when(fresh_session: Path, tmp_path: Path) -> None:
    app = _app(copy_session(fresh_session, tmp_path / "warp"))
    async with app.run_test(size=SIZE) as pilot:
        grid = app.query_one(ClassGrid)
        message = grid.query_one("#grid-message")
        await wait_until(pilot, lambda: "No classes yet" in str(message.render()))
        await wait_until(pilot, lambda: "so far" in str(message.render()))
        assert "100" in str(message.render())  # the configured first-job threshold


async def test_a_locked_output_folder_says_who_holds_it(session_copy: Path) -> None:
    # not "Press w to choose a Warp folder": the folder is fine, another live2d has it
    lock = OutputLock(session_copy / "classification")
    lock.acquire()
    try:
        app = _app(session_copy)
        async with app.run_test(size=SIZE) as pilot:
            panel = app.query_one(SessionPanel)
            await wait_until(pilot, lambda: "in use" in str(panel.render()))
            text = " ".join(str(panel.render()).split())
            assert f"pid {os.getpid()}" in text
            assert "tmux attach" in text and "--out" in text
            assert "choose a Warp folder" not in text
    finally:
        lock.release()


async def test_settings_form_validates_and_greys_out(session_copy: Path) -> None:
    app = _app(session_copy)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: _grid_ready(app))
        form = app.query_one(SettingsForm)
        kind = form.query_one("#set-classification_type", Select)
        kind.value = "refine"
        await pilot.pause()
        assert form.query_one("#row-class_number").has_class("-ignored")
        assert form.query_one("#set-class_number").disabled
        kind.value = "abinit"
        await pilot.pause()
        assert not form.query_one("#row-class_number").has_class("-ignored")
        form.query_one("#set-mask_radius", Input).value = "-5"
        await pilot.press("g")
        await pilot.pause()
        assert "mask_radius" in str(form.query_one("#settings-error").render())
        assert (
            app.session.snapshot is not None
            and app.session.snapshot.status is SessionStatus.STOPPED
        )
        assert not app.session.supervisor.job_running


async def test_start_stop_quit_confirmation(session_copy: Path) -> None:
    app = _app(session_copy)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: _grid_ready(app))
        form = app.query_one(SettingsForm)
        lengthen_job(app)  # running until the test stops it
        await pilot.click("#start-now")
        await wait_until(pilot, lambda: _status(app) is SessionStatus.RUNNING)
        assert form.locked and form.query_one("#set-mask_radius").disabled
        assert app.query_one("#start-now", Button).disabled
        assert not app.query_one("#abort", Button).disabled
        # the session's cycle number and the place in the job, worded apart
        panel = app.query_one(SessionPanel)
        await wait_until(pilot, lambda: "cycles in this job" in str(panel.render()))
        last = (
            app.session.snapshot.cycles[-1].number
            if app.session.snapshot and app.session.snapshot.cycles
            else 0
        )
        assert re.search(
            r"Running · cycle (\d+) · (1st|2nd|3rd|\d+th) of 2\d\d cycles in this job",
            str(panel.render()),
        ), str(panel.render())
        assert int(re.findall(r"cycle (\d+) ·", str(panel.render()))[0]) > last
        # quit while running asks; Esc keeps running
        await pilot.press("q")
        await wait_until(pilot, lambda: isinstance(app.screen, QuitScreen))
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, QuitScreen))
        assert app.is_running and app.session.supervisor.job_running
        # abort asks too; "n" declines
        await pilot.press("X")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("n")
        await wait_until(pilot, lambda: not isinstance(app.screen, ConfirmScreen))
        assert app.session.supervisor.job_running
        # stop: finishes the cycle, then stopped
        await pilot.press("x")
        await wait_until(
            pilot,
            lambda: _status(app) is SessionStatus.STOPPED,
            timeout=120,
        )
        assert not form.locked


@pytest.mark.slow
async def test_abort_key_and_quit_abort(session_copy: Path) -> None:
    app = _app(session_copy)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: _grid_ready(app))
        lengthen_job(app)  # running until the test aborts it
        await pilot.press("g")
        await wait_until(pilot, lambda: app.session.supervisor.job_running)
        await pilot.press("X")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_until(pilot, lambda: not app.session.supervisor.job_running, timeout=60)
        await pilot.press("a")  # automatic on → waiting
        await wait_until(
            pilot,
            lambda: _status(app) is not SessionStatus.STOPPED,
        )
        await pilot.press("g")
        await wait_until(pilot, lambda: app.session.supervisor.job_running)
        await pilot.press("q")
        await wait_until(pilot, lambda: isinstance(app.screen, QuitScreen))
        await pilot.press("a")
        await wait_until(pilot, lambda: not app.is_running, timeout=60)


async def test_mouse_selects_and_opens(session_copy: Path) -> None:
    app = _app(session_copy)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: _grid_ready(app))
        grid = app.query_one(ClassGrid)
        assert grid._geometry is not None
        tile = grid._geometry.tile_cols
        strip = app.query(".grid-strip").first()
        await pilot.click(strip, offset=(tile + 1, 1))
        assert grid.selected == 1
        await pilot.click(strip, offset=(2 * tile + 1, 1), times=2)
        await wait_until(pilot, lambda: isinstance(app.screen, ClassDetailScreen))
        await pilot.press("escape")
        await pilot.click("#tabs Tab#--content-tab-output-tab")
        assert app.query_one(TabbedContent).active == "output-tab"


async def test_command_palette_lists_actions(session_copy: Path) -> None:
    app = _app(session_copy)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: _grid_ready(app))
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for title in (
            "Start job now",
            "Start automatic jobs",
            "Stop",
            "Abort",
            "Pick a cycle",
            "Warp folder",
            "Redraw images",
            "Keys",
            "Sort classes",
        ):
            assert title in titles
        await pilot.press("ctrl+p")
        await pilot.press(*"sort classes")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.query_one(ClassGrid).by_count)


@pytest.mark.slow
async def test_quit_stop_after_cycle(session_copy: Path) -> None:
    """Quit → "stop after this cycle": the app stays until the job ends, then exits."""
    app = _app(session_copy)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: _grid_ready(app))
        lengthen_job(app)  # still running when quit asks
        await pilot.press("g")
        await wait_until(pilot, lambda: _status(app) is SessionStatus.RUNNING)
        await pilot.press("q")
        await wait_until(pilot, lambda: isinstance(app.screen, QuitScreen))
        await pilot.press("s")
        await wait_until(pilot, lambda: not app.is_running, timeout=180)
    assert not app.session.supervisor.job_running


async def test_tmux_hint_line_when_only_halfcell(session_copy: Path) -> None:
    from live2d_tui.config import ImageMode
    from live2d_tui.supervisor import Supervisor
    from live2d_tui.ui.images import TMUX_HINT, ImageChoice

    from .ui_helpers import TEST_CONFIG

    choice = ImageChoice(ImageMode.HALFCELL, "tmux claims Sixel, client lacks it", TMUX_HINT)
    app = Live2DApp(Supervisor(TEST_CONFIG, warp_folder=session_copy), images=choice)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: _grid_ready(app))
        hint = app.query_one("#image-hint")
        assert hint.display and "allow-passthrough" in str(hint.render())
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen))
        assert "tmux claims Sixel" in str(app.screen.query_one("#help-text").render())


@pytest.mark.parametrize("width", [80, 100])
async def test_tmux_hint_is_read_whole_at_80_columns(session_copy: Path, width: int) -> None:
    # it was cut at the right edge ("…(sixel terminals), or `set"): it wraps instead
    from live2d_tui.config import ImageMode
    from live2d_tui.supervisor import Supervisor
    from live2d_tui.ui.images import TMUX_HINT, ImageChoice

    from .ui_helpers import TEST_CONFIG

    choice = ImageChoice(ImageMode.HALFCELL, "tmux claims Sixel, client lacks it", TMUX_HINT)
    app = Live2DApp(Supervisor(TEST_CONFIG, warp_folder=session_copy), images=choice)
    async with app.run_test(size=(width, 40)) as pilot:
        await wait_until(pilot, lambda: _grid_ready(app))
        hint = app.query_one("#image-hint")
        size = hint.size
        assert size.width < len(TMUX_HINT)  # the text is longer than one line here
        lines = hint.render_lines(Region(0, 0, size.width, size.height))
        shown = " ".join("".join(seg.text for seg in line).strip() for line in lines)
        assert " ".join(shown.split()) == " ".join(TMUX_HINT.split())
        assert hint.region.right <= app.screen.region.right


def _contrast(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    """WCAG contrast ratio of two sRGB colours."""

    def luminance(rgb: tuple[int, int, int]) -> float:
        def channel(c: int) -> float:
            v = c / 255
            return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4

        r, g, b = (channel(c) for c in rgb)
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def _label_contrasts(button: Button) -> dict[str, float]:
    """The label's contrast after the terminal's colour system rounds it: true colour, 256
    colours, 16 colours (where xterm draws bold in colours 0-7 with the bright colour)."""
    from rich.color import Color, ColorSystem
    from rich.terminal_theme import DEFAULT_TERMINAL_THEME

    size = button.outer_size  # borders included: the label is on the middle line
    segments = [
        segment
        for line in button.render_lines(Region(0, 0, size.width, size.height))
        for segment in line
        if any(c.isalnum() for c in segment.text) and segment.style is not None  # not borders
    ]
    assert segments, button
    worst: dict[str, float] = {}
    for segment in segments:
        style = segment.style
        assert style is not None and style.color is not None and style.bgcolor is not None
        for name, system in (
            ("truecolor", None),
            ("256", ColorSystem.EIGHT_BIT),
            ("16", ColorSystem.STANDARD),
        ):
            fg: Color = style.color if system is None else style.color.downgrade(system)
            bg: Color = style.bgcolor if system is None else style.bgcolor.downgrade(system)
            if system is ColorSystem.STANDARD and style.bold and (fg.number or 0) < 8:
                fg = Color.from_ansi((fg.number or 0) + 8)
            ratio = _contrast(
                tuple(fg.get_truecolor(DEFAULT_TERMINAL_THEME)),  # type: ignore[arg-type]
                tuple(bg.get_truecolor(DEFAULT_TERMINAL_THEME)),  # type: ignore[arg-type]
            )
            worst[name] = min(ratio, worst.get(name, ratio))
    return worst


async def test_every_button_label_is_legible_in_16_256_and_true_colour(
    session_copy: Path,
) -> None:
    # TERM=xterm gave grey labels on bright green/red and blank grey boxes for disabled ones
    app = _app(session_copy)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: _grid_ready(app))
        bar = app.query_one(JobBar)
        checked: list[str] = []

        def check(buttons: list[Button]) -> None:
            for button in buttons:
                for system, ratio in _label_contrasts(button).items():
                    where = f"{button.id} ({'disabled' if button.disabled else 'enabled'})"
                    assert ratio >= 4.5, f"{where} in {system} colours: {ratio:.2f}"
                checked.append(f"{button.id}:{button.disabled}")

        for status in (SessionStatus.STOPPED, SessionStatus.RUNNING):
            bar.set_status(status)  # every button enabled once and disabled once
            await pilot.pause(0.3)  # the restyle after a change of :disabled
            check(list(bar.query(Button)))

        async def apply(text: str) -> str | None:
            return None

        for screen in (
            QuitScreen(),
            ConfirmScreen("Abort?", "Abort"),
            WarpFolderScreen("/data", apply),
        ):
            app.push_screen(screen)
            await pilot.pause(0.3)
            check(list(screen.query(Button)))
            app.pop_screen()
            await pilot.pause()
        assert len(checked) == 8 + 3 + 2 + 2
