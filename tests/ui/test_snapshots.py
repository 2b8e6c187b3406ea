"""SVG snapshots of every screen and state (pytest-textual-snapshot), half-cell images pinned.

Determinism: the session sits at a fixed path (paths are on screen), cycle times are fixed, the
class images are synthetic (fixed seed) instead of engine output, the session log is replaced
by fixed lines and its clock is frozen, and the cell size is pinned (conftest). The supervisor
is real; its interval is an hour, so nothing periodic happens while the picture is taken.

Update after an intended change: ``pytest tests/ui/test_snapshots.py --snapshot-update``.
"""

from __future__ import annotations

import dataclasses
import fcntl
import os
import shutil
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import mrcfile
import numpy as np
import pytest
from textual.widgets import Input

from live2d_tui.events import BlockType, SessionStatus
from live2d_tui.results.quality import ClassQuality, CycleQuality, file_identity, write_cache
from live2d_tui.results.selection import Mark, Selection, write_selection
from live2d_tui.supervisor.lock import OutputLock
from live2d_tui.supervisor.state import load_state, save_state
from live2d_tui.ui.app import Live2DApp
from live2d_tui.ui.montage import load_class_stack
from live2d_tui.ui.screens.detail import ClassDetailScreen
from live2d_tui.ui.screens.dialogs import ConfirmScreen, CyclePicker, QuitScreen, WarpFolderScreen
from live2d_tui.ui.screens.results import ExportScreen, RulesScreen
from live2d_tui.ui.widgets.class_grid import ClassGrid
from live2d_tui.ui.widgets.session_health import HealthPlot, SessionHealthView
from live2d_tui.ui.widgets.session_panel import SessionPanel

from .ui_helpers import copy_session, make_app, wait_until

FIXED_ROOT = Path("/tmp/live2d-ui-snapshots")
"""Where the finished session's copy sits (its path is on screen)."""
OTHER_ROOT = Path("/tmp/live2d-ui-snapshots-other")
"""Where other folders sit: an ingest thread of the previous test's supervisor may still be
writing into FIXED_ROOT's copy for a moment after that app closed."""
SIZE = (140, 42)
LOCK_PATH = Path("/tmp/live2d-ui-snapshots.lock")
"""Held for each test: the fixed paths are shared by every pytest process on the machine (two
checkouts, or xdist workers) and one would delete the other's session under it."""


@pytest.fixture(autouse=True)
def _one_process_at_a_time() -> Iterator[None]:
    with LOCK_PATH.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


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


def _deterministic_copy(
    source: Path, monkeypatch: pytest.MonkeyPatch, root: Path = FIXED_ROOT
) -> Path:
    monkeypatch.setattr("live2d_tui.supervisor.sessionlog.datetime", _FrozenDatetime)
    if root.exists():
        shutil.rmtree(root)
    warp = copy_session(source, root / "warp")
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
    for c in cycles:
        if c.block_type is not BlockType.RANDOM_SEED:
            _synthetic_quality(out, c.number, c.name, len(c.particle_count_per_class) - 1)
    (out / "live2d.log").write_text(
        "".join(f"2026-01-02 03:{i:02d}:00 Cycle {i} finished: synthetic line\n" for i in range(40))
    )
    return warp


def _synthetic_quality(out: Path, number: int, name: str, k: int) -> None:
    """A fixed half-set estimate of cycle ``number`` (the real one depends on engine output
    and would arrive at a random moment), valid for its files as they are now."""
    box, pixel = 64, 3.0
    rings = np.arange(box // 2 + 1)
    classes = []
    for j in range(1, k + 1):
        if j == 2:  # too few members for a figure
            classes.append(ClassQuality(j, 30, 28, 28, 1.5, None, "fewer than 50 used particles"))
            continue
        r0 = 4.0 + 1.3 * j
        curve = tuple(round(float(1 / (1 + (r / r0) ** 4)), 4) for r in rings)
        crossing = r0 * 6**0.25
        figure = round(box * pixel / crossing, 2)
        used = 55 + 7 * j
        classes.append(ClassQuality(j, used + 5, used, used, 2.0 + 0.1 * j, figure, "", curve))
    source = {
        f"{name}.star": file_identity(out / f"{name}.star"),
        f"{name}.mrc": file_identity(out / f"{name}.mrc"),
    }
    quality = CycleQuality(number, box, pixel, 90.0, 1000, 441, tuple(classes), source, 0.5)
    write_cache(out, quality)


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


# --- dialogs and states: each test says what to do once the app is ready ---------------------

Step = Callable[[Any, Any], Awaitable[object]]
"""One thing to do before the picture: ``await step(app, pilot)``."""


def _snapshot_after(
    snap_compare: Any,
    app: Any,
    *steps: Step,
    ready: bool = True,
    size: tuple[int, int] = SIZE,
) -> bool:
    """The picture of ``app`` after its grid is ready (unless ``ready`` is False) and ``steps``."""

    async def run_before(pilot: Any) -> None:
        if ready:
            await wait_until(pilot, lambda: _ready(app))
        for step in steps:
            await step(app, pilot)
        await pilot.pause()

    return bool(snap_compare(app, terminal_size=size, run_before=run_before))


def _press(*keys: str) -> Step:
    return lambda app, pilot: pilot.press(*keys)


def _until(condition: Callable[[Any], bool]) -> Step:
    return lambda app, pilot: wait_until(pilot, lambda: condition(app))


def _push(screen: Any) -> Step:
    async def push(app: Any, pilot: Any) -> None:
        app.push_screen(screen)

    return push


def _on_screen(kind: type) -> Step:
    return _until(lambda app: isinstance(app.screen, kind))


def _panel_says(text: str) -> Step:
    return _until(lambda app: text in str(app.query_one(SessionPanel).render()))


async def _steady_warp_input(app: Any, pilot: Any) -> None:
    # a blinking cursor is on or off depending on the moment
    app.screen.query_one("#warp-input", Input).cursor_blink = False


async def _type_missing_folder(app: Any, pilot: Any) -> None:
    app.screen.query_one("#warp-input", Input).value = str(FIXED_ROOT / "no-such-session")


def _warp_error_shown(app: Any) -> bool:
    return "⚠" in str(app.screen.query_one("#warp-error").render())


def test_cycle_picker(snap_compare: Any, snapshot_session: Path) -> None:
    app = make_app(snapshot_session)
    # the second newest cycle highlighted
    assert _snapshot_after(snap_compare, app, _press("c"), _on_screen(CyclePicker), _press("down"))


def test_quit_while_running_dialog(snap_compare: Any, snapshot_session: Path) -> None:
    # q asks this only while a job runs; a running job would make the picture move, so the
    # dialog is shown over the idle session as q would show it
    app = make_app(snapshot_session)
    assert _snapshot_after(snap_compare, app, _push(QuitScreen()))


def test_abort_confirmation(snap_compare: Any, snapshot_session: Path) -> None:
    # X asks this only while a cycle runs (see test_quit_while_running_dialog)
    app = make_app(snapshot_session)
    question = ConfirmScreen("Abort the running cycle now?", "Abort")
    assert _snapshot_after(snap_compare, app, _push(question))


def test_warp_folder_dialog(snap_compare: Any, snapshot_session: Path) -> None:
    app = make_app(snapshot_session)
    opened = (_press("w"), _on_screen(WarpFolderScreen), _steady_warp_input)
    assert _snapshot_after(snap_compare, app, *opened)


def test_warp_folder_dialog_refuses_a_folder(snap_compare: Any, snapshot_session: Path) -> None:
    app = make_app(snapshot_session)
    opened = (_press("w"), _on_screen(WarpFolderScreen), _steady_warp_input)
    refused = (_type_missing_folder, _press("enter"), _until(_warp_error_shown))
    assert _snapshot_after(snap_compare, app, *opened, *refused)


def _waiting_message(app: Any) -> str:
    return str(app.query_one(ClassGrid).query_one("#grid-message").render())


def test_waiting_for_the_first_job(
    snap_compare: Any, fresh_session: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(_deterministic_copy(fresh_session, monkeypatch, OTHER_ROOT))
    # the first look finds Warp's files unsettled, the second (1.1 s later) ingests them; then
    # nothing changes for the hour-long interval
    ingested = _until(
        lambda app: (
            "active" in (panel := str(app.query_one(SessionPanel).render()))
            and " 0 active" not in panel
        )
    )
    told = _until(lambda app: " 0 so far" not in _waiting_message(app))
    assert _snapshot_after(snap_compare, app, ingested, told, ready=False)


def test_not_a_warp_folder(snap_compare: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("live2d_tui.supervisor.sessionlog.datetime", _FrozenDatetime)
    if OTHER_ROOT.exists():
        shutil.rmtree(OTHER_ROOT)
    (OTHER_ROOT / "not-warp").mkdir(parents=True)
    app = make_app(OTHER_ROOT / "not-warp")
    assert _snapshot_after(snap_compare, app, _panel_says("⚠"), ready=False)


def test_output_folder_locked(snap_compare: Any, snapshot_session: Path) -> None:
    lock = OutputLock(snapshot_session / "classification")
    lock.acquire()
    # the holder as another live2d would have written it (ours names this process and host)
    lock.path.write_text(
        '{"user": "alice", "host": "em-workstation", "pid": 4242, '
        '"since": "2026-01-02T03:00:00+00:00"}\n'
    )
    try:
        app = make_app(snapshot_session)
        assert _snapshot_after(snap_compare, app, _panel_says("in use"), ready=False)
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
    failed = dataclasses.replace(
        loaded.state,
        status=SessionStatus.FAILED,
        automatic=False,
        job=None,
        consecutive_failures=3,
        last_error=error,
    )
    save_state(out, failed)
    app = make_app(snapshot_session)
    assert _snapshot_after(snap_compare, app, _panel_says("Failed"))


# --- class selection, rules, export, class view with its FRC curve ----------------------------


def _marked(snapshot_session: Path) -> Path:
    """The latest cycle with class 1 selected, 3 rejected and 4 unreviewed."""
    out = snapshot_session / "classification"
    loaded = load_state(out)
    assert loaded is not None
    cycle = loaded.state.cycles[-1].number
    marks = {
        1: Mark("good", cycle),
        3: Mark("bad", cycle),
        4: Mark(None, cycle - 1, 0.21, True, "good"),
    }
    write_selection(out, Selection(cycle, marks, revision=1))
    return snapshot_session


def _has_results(app: Any) -> bool:
    data = app.query_one(ClassGrid).data
    return data is not None and data.results is not None and data.results.quality is not None


async def _no_blink(app: Any, pilot: Any) -> None:
    for field in app.screen.query(Input):
        field.cursor_blink = False


def test_grid_with_marks_and_figures(snap_compare: Any, snapshot_session: Path) -> None:
    app = make_app(_marked(snapshot_session))
    assert _snapshot_after(snap_compare, app, _until(_has_results), _press("right"))


def test_grid_sorted_by_resolution(snap_compare: Any, snapshot_session: Path) -> None:
    app = make_app(_marked(snapshot_session))
    assert _snapshot_after(snap_compare, app, _until(_has_results), _press("o", "o"))


def test_rules_dialog(snap_compare: Any, snapshot_session: Path) -> None:
    app = make_app(snapshot_session)
    assert _snapshot_after(
        snap_compare, app, _until(_has_results), _press("R"), _on_screen(RulesScreen), _no_blink
    )


def test_export_dialog(snap_compare: Any, snapshot_session: Path) -> None:
    app = make_app(_marked(snapshot_session))
    assert _snapshot_after(
        snap_compare, app, _until(_has_results), _press("E"), _on_screen(ExportScreen)
    )


def _detail_image(app: Any) -> bool:
    return isinstance(app.screen, ClassDetailScreen) and bool(app.screen.query("#detail-image"))


def test_class_view_with_frc_plot(snap_compare: Any, snapshot_session: Path) -> None:
    app = make_app(_marked(snapshot_session))
    assert _snapshot_after(
        snap_compare, app, _until(_has_results), _press("enter"), _until(_detail_image)
    )


# --- the Session tab ----------------------------------------------------------------------------

MOVIES_START = 1_767_312_000.0
"""2026-01-02 00:00 UTC: the first movie's XML time in the Session tab's pictures."""


@pytest.fixture
def utc() -> Iterator[None]:
    """Local time is UTC (the plots' time axis names the first movie's local time)."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if old is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = old
    time.tzset()


def _stamp_movies(warp: Path) -> None:
    """One movie every 10 minutes: the XML times are the plots' time axis."""
    for i, xml in enumerate(sorted(warp.glob("*.xml"))):
        stamp = MOVIES_START + 600.0 * i
        os.utime(xml, (stamp, stamp))


def _plots_shown(app: Any) -> bool:
    view = app.query_one(SessionHealthView)
    summary = str(view.query_one("#health-summary").render())
    shown = [plot for plot in view.query(HealthPlot) if plot.region.height]
    counted = "movies in" in summary and not summary.endswith(" 0 particles")  # ingest has read
    return counted and bool(shown) and all(plot.current for plot in shown)


@pytest.mark.parametrize("size", [SIZE, (80, 24)], ids=["140x42", "80x24"])
def test_session_tab(
    snap_compare: Any, snapshot_session: Path, utc: None, size: tuple[int, int]
) -> None:
    _stamp_movies(snapshot_session)
    app = make_app(snapshot_session)
    opened = (_press("3"), _until(_plots_shown))
    assert _snapshot_after(snap_compare, app, *opened, size=size)


def test_streaming_state(
    snap_compare: Any, snapshot_session: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a streaming job between two updates, as the supervisor's snapshot describes it (a real
    # stream would make the picture move: its particles arrive and its ages grow)
    from live2d_tui.events import StreamState
    from live2d_tui.supervisor.core import Supervisor
    from live2d_tui.ui.widgets.stream_panel import StreamPanel

    state = StreamState(
        cycle=3,
        updating=False,
        blocks=12,
        particles=5_400,
        waiting=340,
        batch=1_000,
        newest_ingested=1_000_000.0 - 150,
        pass_number=3,
        pass_done=4,
        dump_bytes=310_000_000,
        dump_budget_bytes=20_000_000_000,
        full_star_cycle=3,
    )
    real = Supervisor.snapshot

    def streaming(self: Supervisor) -> Any:
        return dataclasses.replace(
            real(self),
            stream=state,
            status=SessionStatus.RUNNING,
            next_trigger="Streaming: next update at 1,000 new particles (340 so far)",
        )

    monkeypatch.setattr(Supervisor, "snapshot", streaming)
    monkeypatch.setattr("live2d_tui.ui.widgets.stream_panel._now", lambda: 1_000_000.0)
    app = make_app(snapshot_session)
    shown = _until(lambda app: app.query_one(StreamPanel).display)
    assert _snapshot_after(snap_compare, app, shown)
