"""The Session tab's plots: built off the event loop, drawn from a deterministic session.

The session is simulated with a stamped clock (movie i at a fixed epoch + i × 90 s, 40 movies of
which a stretch fails Warp's filter), ingested for its particle table, and turned into the
Session tab's series exactly as the health monitor does; class populations come from a fixed
history. Time zone UTC. Update after an intended change:
``pytest tests/ui/test_session_health.py --snapshot-update``.
"""

from __future__ import annotations

import time

import pytest
from textual.app import App, ComposeResult

from live2d_tui.dataset.ingest import Dataset
from live2d_tui.events import Alert, AlertKind, AlertLevel
from live2d_tui.health import CycleClasses, SessionHealth, prepare_health
from live2d_tui.simulate import SimulationOptions, simulate_session
from live2d_tui.supervisor.monitor import movie_arrays
from live2d_tui.ui.widgets.session_health import (
    HealthPlot,
    SessionHealthView,
    compact,
    fit_title,
    nice_ticks,
    start_label,
    summary_line,
    time_scale,
)
from live2d_tui.warp.catalog import MovieCatalog

START = 1_767_312_000.0  # 2026-01-02 00:00 UTC


@pytest.fixture(scope="module")
def health(tmp_path_factory: pytest.TempPathFactory) -> SessionHealth:
    folder = tmp_path_factory.mktemp("health") / "warp"
    options = SimulationOptions(
        micrographs=40,
        particles_per_micrograph=12,
        box=32,
        diameter=60.0,
        seed=4,
        start_time=START,
        movie_seconds=90.0,
        rejected_from=25,
        rejected_until=31,
    )
    simulate_session(folder, options)
    dataset = Dataset(folder, tmp_path_factory.mktemp("out"), settle_seconds=0.0)
    try:
        dataset.poll_until_settled(30.0, interval=0.05)
        view = dataset.table_view()
        movies = MovieCatalog(dataset.xml_folders).scan().movies
    finally:
        dataset.close()
    cycles = [CycleClasses(0, 0, True, (300, 0, 0, 0, 0))] + [
        CycleClasses(n, 0, False, (0, 40 + 8 * n, 120 - 6 * n, 60, 80 - 10 * max(0, n - 4)))
        for n in range(1, 9)
    ]
    return prepare_health(movie_arrays(movies, view), cycles, table_name=view.name if view else "")


ALERTS = [
    Alert(
        AlertKind.ALL_REJECTED,
        AlertLevel.WARNING,
        "Every new movie is rejected: 6 movies in 9 min, none kept in goodparticles_X.star",
        "2026-01-02T00:46:00+00:00",
    ),
    Alert(
        AlertKind.JOB_FAILED,
        AlertLevel.ERROR,
        "Job failed after 3 attempts: refine2d_1 failed twice: exit status 1",
        "2026-01-02T00:50:00+00:00",
    ),
]


class HealthApp(App[None]):
    def __init__(self, health: SessionHealth) -> None:
        super().__init__()
        self.health = health

    def compose(self) -> ComposeResult:
        yield SessionHealthView(id="health")

    def on_mount(self) -> None:
        view = self.query_one(SessionHealthView)
        view.show(self.health)
        view.show_alerts(ALERTS)


@pytest.fixture(autouse=True)
def _utc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()


async def _plots_built(pilot) -> None:  # type: ignore[no-untyped-def]
    for _ in range(400):
        await pilot.pause(0.05)
        plots = list(pilot.app.query(HealthPlot))
        if plots and all(p.built for p in plots if p.region.height):
            await pilot.pause()
            return
    raise AssertionError("plots not built")


def test_the_series_of_a_deterministic_session(health: SessionHealth) -> None:
    assert health.micrographs == 40 and health.start == START
    assert health.span_hours == pytest.approx(39 * 90 / 3600)
    assert health.micrographs_kept == 34  # 6 rejected by Warp's filter
    assert summary_line(health) == "40 movies in 58 min, 85 % kept · 409 particles"
    assert health.classes.cycles == tuple(range(1, 9))


def test_axes_stay_legible_in_a_narrow_plot() -> None:
    # ticks round and short, titles cut rather than dropped, minutes for a young session
    assert nice_ticks(109_384.6) == [0.0, 50_000.0, 100_000.0, 150_000.0]
    assert nice_ticks(3.2) == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert nice_ticks(0.0) == [0.0, 1.0]
    assert [compact(v) for v in (0, 850, 2_500, 12_500, 150_000, 1_200_000)] == [
        "0",
        "850",
        "2,500",
        "12.5k",
        "150k",
        "1.2M",
    ]
    title = "Movies not kept in goodparticles (%)"
    assert fit_title(title, 80) == title
    assert (
        fit_title(title, 30) == "Movies not kept in goodpart…" and len(fit_title(title, 30)) == 28
    )
    young = SessionHealth(start=START, span_hours=1.5)
    assert time_scale(young) == 60.0 and start_label(young).startswith("minutes since 00:00")
    assert start_label(SessionHealth(start=START, span_hours=2.5)).startswith("hours since")


def test_plots_at_80x24(snap_compare, health: SessionHealth) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(HealthApp(health), terminal_size=(80, 24), run_before=_plots_built)


def test_plots_side_by_side_when_wide(snap_compare, health: SessionHealth) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(HealthApp(health), terminal_size=(160, 48), run_before=_plots_built)


async def test_plots_are_built_off_the_event_loop(health: SessionHealth) -> None:
    import threading

    from live2d_tui.ui.widgets import session_health

    threads: list[str] = []
    original = session_health.build_plot

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        threads.append(threading.current_thread().name)
        return original(*args, **kwargs)

    session_health.build_plot = spy  # type: ignore[assignment]
    try:
        app = HealthApp(health)
        async with app.run_test(size=(100, 40)) as pilot:
            await _plots_built(pilot)
            main = threading.main_thread().name
            assert threads and main not in threads
            before = len(threads)
            await pilot.resize_terminal(120, 40)
            await _plots_built(pilot)
            assert len(threads) > before  # a new size is a new build, again in a worker
    finally:
        session_health.build_plot = original  # type: ignore[assignment]
