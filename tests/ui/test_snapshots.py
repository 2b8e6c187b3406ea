"""SVG snapshots of every screen and state (pytest-textual-snapshot), half-cell images pinned.

Determinism: the session sits at a fixed path (paths are on screen), cycle times are fixed, the
class images are synthetic (fixed seed) instead of engine output, the session log is replaced
by fixed lines and its clock is frozen, and the cell size is pinned (conftest). The supervisor
is real; its interval is an hour, so nothing periodic happens while the picture is taken.

Update after an intended change: ``pytest tests/ui/test_snapshots.py --snapshot-update``.
"""

from __future__ import annotations

import dataclasses
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import mrcfile
import numpy as np
import pytest
from textual.widgets import Input

from live2d_tui.events import SessionStatus
from live2d_tui.supervisor.lock import OutputLock
from live2d_tui.supervisor.state import load_state, save_state
from live2d_tui.ui.app import Live2DApp
from live2d_tui.ui.montage import load_class_stack
from live2d_tui.ui.screens.dialogs import ConfirmScreen, CyclePicker, QuitScreen, WarpFolderScreen
from live2d_tui.ui.widgets.class_grid import ClassGrid
from live2d_tui.ui.widgets.session_panel import SessionPanel

from .ui_helpers import copy_session, make_app, wait_until

FIXED_ROOT = Path("/tmp/live2d-ui-snapshots")
SIZE = (140, 42)


class _FrozenDatetime(datetime):
    @classmethod
    def now(cls, tz: Any = None) -> _FrozenDatetime:  # type: ignore[override]
        return cls(2026, 1, 2, 3, 4, 5, tzinfo=tz)


def _synthetic_classes(k: int, box: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:box, :box] - box / 2
    out = np.zeros((k, box, box), np.float32)
    for i in range(k):
        angle = np.pi * i / k
        u = x * np.cos(angle) + y * np.sin(angle)
        v = -x * np.sin(angle) + y * np.cos(angle)
        out[i] = np.exp(-(u**2) / 120 - v**2 / 30) + 0.05 * rng.normal(size=(box, box))
    return out


def _deterministic_copy(source: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr("live2d_tui.supervisor.sessionlog.datetime", _FrozenDatetime)
    if FIXED_ROOT.exists():
        shutil.rmtree(FIXED_ROOT)
    warp = copy_session(source, FIXED_ROOT / "warp")
    out = warp / "classification"
    if not out.exists():
        return warp
    loaded = load_state(out)
    assert loaded is not None
    # engine output is not bit-reproducible between runs: fix what is drawn from it
    cycles = tuple(
        dataclasses.replace(
            c,
            time=f"2026-01-02T03:{10 + i:02d}:00+00:00",
            duration_seconds=60.0,
            particle_count_per_class=(
                0,
                *(
                    ((37 * (j + 1) * (i + 1)) % 150 + 3)
                    for j in range(len(c.particle_count_per_class) - 1)
                ),
            ),
        )
        for i, c in enumerate(loaded.state.cycles)
    )
    save_state(out, dataclasses.replace(loaded.state, cycles=cycles))
    for c in cycles:
        path = out / f"{c.name}.mrc"
        k, box = load_class_stack(path).shape[:2]
        with mrcfile.new(path, overwrite=True) as mrc:
            mrc.set_data(_synthetic_classes(k, box, seed=c.number))
    (out / "live2d.log").write_text(
        "".join(f"2026-01-02 03:{i:02d}:00 Cycle {i} finished: synthetic line\n" for i in range(40))
    )
    return warp


def _ready(app: Live2DApp) -> bool:
    grid = app.query_one(ClassGrid)
    return grid.data is not None and grid.image_generation > 0 and bool(grid.query(".grid-label"))


@pytest.fixture
def snapshot_session(finished_session: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return _deterministic_copy(finished_session, monkeypatch)


def test_main_screen_classes(snap_compare: Any, snapshot_session: Path) -> None:
    app = make_app(snapshot_session)

    async def run_before(pilot: Any) -> None:
        await wait_until(pilot, lambda: _ready(app))  # type: ignore[arg-type]
        app.query_one(ClassGrid).focus()  # type: ignore[attr-defined]
        await pilot.press("right")
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_class_detail(snap_compare: Any, snapshot_session: Path) -> None:
    app = make_app(snapshot_session)

    async def run_before(pilot: Any) -> None:
        await wait_until(pilot, lambda: _ready(app))  # type: ignore[arg-type]
        app.query_one(ClassGrid).focus()  # type: ignore[attr-defined]
        await pilot.press("right", "enter")
        await wait_until(pilot, lambda: bool(app.screen.query("#detail-image")))  # type: ignore[attr-defined]
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_job_output(snap_compare: Any, snapshot_session: Path) -> None:
    app = make_app(snapshot_session)

    async def run_before(pilot: Any) -> None:
        await wait_until(pilot, lambda: _ready(app))  # type: ignore[arg-type]
        await pilot.press("2")
        await pilot.pause(0.6)  # one log poll
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_settings_expert_open(snap_compare: Any, snapshot_session: Path) -> None:
    app = make_app(snapshot_session)

    async def run_before(pilot: Any) -> None:
        await wait_until(pilot, lambda: _ready(app))  # type: ignore[arg-type]
        await pilot.click("#group-expert CollapsibleTitle")
        # the group scrolls into view after the next refresh (Collapsible.call_after_refresh):
        # one pause is not always enough on a busy machine
        await wait_until(pilot, lambda: app.query_one("#left").scroll_y > 0)  # type: ignore[attr-defined]
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_help_screen(snap_compare: Any, snapshot_session: Path) -> None:
    app = make_app(snapshot_session)

    async def run_before(pilot: Any) -> None:
        await wait_until(pilot, lambda: _ready(app))  # type: ignore[arg-type]
        await pilot.press("question_mark")
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


# --- dialogs ----------------------------------------------------------------------------------


def test_cycle_picker(snap_compare: Any, snapshot_session: Path) -> None:
    app = make_app(snapshot_session)

    async def run_before(pilot: Any) -> None:
        await wait_until(pilot, lambda: _ready(app))  # type: ignore[arg-type]
        await pilot.press("c")
        await wait_until(pilot, lambda: isinstance(app.screen, CyclePicker))  # type: ignore[attr-defined]
        await pilot.press("down")  # the second newest, highlighted
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_quit_while_running_dialog(snap_compare: Any, snapshot_session: Path) -> None:
    # q asks this only while a job runs; a running job would make the picture move, so the
    # dialog is shown over the idle session as q would show it
    app = make_app(snapshot_session)

    async def run_before(pilot: Any) -> None:
        await wait_until(pilot, lambda: _ready(app))  # type: ignore[arg-type]
        app.push_screen(QuitScreen())  # type: ignore[attr-defined]
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_abort_confirmation(snap_compare: Any, snapshot_session: Path) -> None:
    # X asks this only while a cycle runs (see test_quit_while_running_dialog)
    app = make_app(snapshot_session)

    async def run_before(pilot: Any) -> None:
        await wait_until(pilot, lambda: _ready(app))  # type: ignore[arg-type]
        app.push_screen(ConfirmScreen("Abort the running cycle now?", "Abort"))  # type: ignore[attr-defined]
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def _warp_dialog_input(app: Any) -> Input:
    field: Input = app.screen.query_one("#warp-input", Input)
    field.cursor_blink = False  # a blinking cursor is on or off depending on the moment
    return field


def test_warp_folder_dialog(snap_compare: Any, snapshot_session: Path) -> None:
    app = make_app(snapshot_session)

    async def run_before(pilot: Any) -> None:
        await wait_until(pilot, lambda: _ready(app))  # type: ignore[arg-type]
        await pilot.press("w")
        await wait_until(pilot, lambda: isinstance(app.screen, WarpFolderScreen))  # type: ignore[attr-defined]
        _warp_dialog_input(app)
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_warp_folder_dialog_refuses_a_folder(snap_compare: Any, snapshot_session: Path) -> None:
    app = make_app(snapshot_session)

    async def run_before(pilot: Any) -> None:
        await wait_until(pilot, lambda: _ready(app))  # type: ignore[arg-type]
        await pilot.press("w")
        await wait_until(pilot, lambda: isinstance(app.screen, WarpFolderScreen))  # type: ignore[attr-defined]
        _warp_dialog_input(app).value = str(FIXED_ROOT / "no-such-session")
        await pilot.press("enter")
        error = app.screen.query_one("#warp-error")  # type: ignore[attr-defined]
        await wait_until(pilot, lambda: "⚠" in str(error.render()))
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


# --- states before and around the classes -----------------------------------------------------


def test_waiting_for_the_first_job(
    snap_compare: Any, fresh_session: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(_deterministic_copy(fresh_session, monkeypatch))

    async def run_before(pilot: Any) -> None:
        grid = app.query_one(ClassGrid)  # type: ignore[attr-defined]
        message = grid.query_one("#grid-message")
        panel = app.query_one(SessionPanel)  # type: ignore[attr-defined]
        # the first look finds Warp's files unsettled, the second (1.1 s later) ingests them;
        # then nothing changes for the hour-long interval
        await wait_until(
            pilot,
            lambda: "active" in str(panel.render()) and " 0 active" not in str(panel.render()),
        )
        await wait_until(pilot, lambda: " 0 so far" not in str(message.render()))
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_not_a_warp_folder(snap_compare: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("live2d_tui.supervisor.sessionlog.datetime", _FrozenDatetime)
    if FIXED_ROOT.exists():
        shutil.rmtree(FIXED_ROOT)
    (FIXED_ROOT / "not-warp").mkdir(parents=True)
    app = make_app(FIXED_ROOT / "not-warp")

    async def run_before(pilot: Any) -> None:
        panel = app.query_one(SessionPanel)  # type: ignore[attr-defined]
        await wait_until(pilot, lambda: "⚠" in str(panel.render()))
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_output_folder_locked(
    snap_compare: Any, snapshot_session: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = snapshot_session / "classification"
    lock = OutputLock(out)
    lock.acquire()
    # the holder as another live2d would have written it (ours names this process and host)
    lock.path.write_text(
        '{"user": "alice", "host": "em-workstation", "pid": 4242, '
        '"since": "2026-01-02T03:00:00+00:00"}\n'
    )
    try:
        app = make_app(snapshot_session)

        async def run_before(pilot: Any) -> None:
            panel = app.query_one(SessionPanel)  # type: ignore[attr-defined]
            await wait_until(pilot, lambda: "in use" in str(panel.render()))
            await pilot.pause()

        assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
    finally:
        lock.release()


def test_failed_job(snap_compare: Any, snapshot_session: Path) -> None:
    # automatic jobs stopped after repeated failures: saved as failed, shown as failed
    out = snapshot_session / "classification"
    loaded = load_state(out)
    assert loaded is not None
    error = (
        "refine2d_2 failed twice: exit status 1 (log: "
        f"{out}/cycles/cycle_4/refine2d_2_0a1b2c_try2.log) | Error: not enough memory"
    )
    save_state(
        out,
        dataclasses.replace(
            loaded.state,
            status=SessionStatus.FAILED,
            automatic=False,
            job=None,
            consecutive_failures=3,
            last_error=error,
        ),
    )
    app = make_app(snapshot_session)

    async def run_before(pilot: Any) -> None:
        await wait_until(pilot, lambda: _ready(app))  # type: ignore[arg-type]
        panel = app.query_one(SessionPanel)  # type: ignore[attr-defined]
        await wait_until(pilot, lambda: "Failed" in str(panel.render()))
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
