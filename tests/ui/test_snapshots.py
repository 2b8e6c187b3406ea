"""SVG snapshots of the main states (pytest-textual-snapshot), half-cell images pinned.

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
from ui_helpers import copy_session, make_app, wait_until

from live2d_tui.supervisor.state import load_state, save_state
from live2d_tui.ui.app import Live2DApp
from live2d_tui.ui.montage import load_class_stack
from live2d_tui.ui.widgets.class_grid import ClassGrid

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
