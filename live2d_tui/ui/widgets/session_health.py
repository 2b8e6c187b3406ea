"""The Session tab: the session's health at a glance, and the alerts in force.

From the top: one line of totals, one line per raised alert (with its time), then five plots of
the latest :class:`~live2d_tui.health.SessionHealth` (prepared by the supervisor in a worker):
movies and particles per hour; Warp's CTF resolution estimate and the defocus, per movie; the
share of movies the particle table does not keep; the class populations over the cycles of the
current lineage, stacked. Time runs since the first movie (its XML's modification time), in
minutes for the first two hours of a session and in hours after that; a title too long for its
plot is shortened (plotext would drop it).

Plots are drawn with textual-plotext's ``Plot``, **off the event loop**: a plot's text is built in
a thread worker whenever its data or size changes, and the loop only swaps the finished text in
(a plot of 600 points takes 10–30 ms to build). Builds are serialised by one lock, because plotext
keeps a little module-level state. Two plots side by side from 100 columns; one under the other
(the tab scrolls) below that, so each stays legible in an 80 × 24 terminal.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from datetime import datetime

from rich.text import Text
from textual.app import ComposeResult, RenderResult
from textual.containers import Grid, VerticalScroll
from textual.widget import Widget
from textual.widgets import Static
from textual_plotext.plot import Plot

from live2d_tui.events import Alert, AlertLevel
from live2d_tui.health import SessionHealth

_BUILD_LOCK = threading.Lock()

CLASS_COLORS = ("cyan", "orange", "green", "magenta", "blue", "red", "yellow", "gray", "white")
"""One colour per class drawn (the largest classes first, then "other")."""

Draw = Callable[[Plot, SessionHealth, int], None]
"""Fills a plot from the health series, given the plot's width in columns."""


MINUTES_UNTIL_HOURS = 2.0
"""Sessions shorter than this (hours) have their time axis in minutes."""


def time_scale(health: SessionHealth) -> float:
    """Factor from the series' hours to the axis unit (60: minutes)."""
    return 60.0 if health.span_hours < MINUTES_UNTIL_HOURS else 1.0


def start_label(health: SessionHealth) -> str:
    """``hours since 14:02 (first movie)`` (local time), or ``minutes since …``."""
    unit = "minutes" if time_scale(health) == 60.0 else "hours"
    if health.start is None:
        return unit
    when = datetime.fromtimestamp(health.start).astimezone().strftime("%H:%M")
    return f"{unit} since {when} (first movie)"


def _scaled(xs: Sequence[float], health: SessionHealth) -> list[float]:
    scale = time_scale(health)
    return [x * scale for x in xs]


def fit_title(title: str, width: int) -> str:
    """``title`` cut with an ellipsis to fit a plot ``width`` columns wide."""
    room = max(8, width - 2)
    return title if len(title) <= room else title[: room - 1].rstrip() + "…"


def table_label(health: SessionHealth) -> str:
    """The particle table's short name (``goodparticles``) for titles."""
    return health.table_name.split("_", 1)[0] if health.table_name else "the particle table"


def _finite(xs: Sequence[float], ys: Sequence[float]) -> tuple[list[float], list[float]]:
    pairs = [(x, y) for x, y in zip(xs, ys, strict=True) if math.isfinite(y)]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def compact(value: float) -> str:
    """A tick label a few characters wide: ``850``, ``12.5k``, ``110k``, ``1.2M``."""
    size = abs(value)
    if size >= 1e6:
        return f"{value / 1e6:.{0 if size >= 1e7 else 1}f}M"
    if size >= 1e4:
        return f"{value / 1e3:.{0 if size >= 1e5 else 1}f}k"
    return f"{value:,.0f}" if size >= 10 or value == round(value) else f"{value:.1f}"


def nice_ticks(top: float, count: int = 4) -> list[float]:
    """Round ticks from 0 to at least ``top`` (steps of 1, 2 or 5 × 10ⁿ)."""
    if not math.isfinite(top) or top <= 0:
        return [0.0, 1.0]
    rough = top / count
    power = 10.0 ** math.floor(math.log10(rough))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= rough)
    return [i * step for i in range(math.ceil(top / step - 1e-9) + 1)]


def _round_axis(plot: Plot, values: Sequence[float], yside: str = "left") -> None:
    finite = [v for v in values if math.isfinite(v)]
    # a quarter of headroom: the top rows are the legend's, and a steady rate would run under it
    ticks = nice_ticks(1.25 * max(finite, default=0.0))
    # plotext takes "left" or "right" (the stub's float is wrong, as for ``stacked_bar``)
    ylim: Callable[..., None] = plot.ylim
    yticks: Callable[..., None] = plot.yticks
    ylim(0, ticks[-1], yside=yside)
    yticks(ticks, [compact(t) for t in ticks], yside=yside)


def draw_rates(plot: Plot, health: SessionHealth, width: int) -> None:
    """Movies (left axis) and particles (right axis) per hour."""
    plot.title(fit_title("Movies and particles per hour", width))
    if not health.bins:
        return
    x = _scaled(health.bins, health)
    plot.plot(x, list(health.micrographs_per_hour), label="movies/h", color="cyan")
    plot.plot(
        x, list(health.particles_per_hour), label="particles/h", color="orange", yside="right"
    )
    _round_axis(plot, health.micrographs_per_hour)
    _round_axis(plot, health.particles_per_hour, "right")
    plot.xlabel(start_label(health))


def draw_resolution(plot: Plot, health: SessionHealth, width: int) -> None:
    """Warp's CTF fit resolution estimate per movie."""
    plot.title(fit_title("CTF fit resolution (Å), per movie", width))
    if health.resolution.x:
        x = _scaled(health.resolution.x, health)
        plot.scatter(x, list(health.resolution.y), color="green")
        plot.xlabel(start_label(health))


def draw_defocus(plot: Plot, health: SessionHealth, width: int) -> None:
    """Defocus per movie."""
    plot.title(fit_title("Defocus (µm), per movie", width))
    if health.defocus.x:
        x = _scaled(health.defocus.x, health)
        plot.scatter(x, list(health.defocus.y), color="magenta")
        plot.xlabel(start_label(health))


def draw_rejected(plot: Plot, health: SessionHealth, width: int) -> None:
    """Percent of the decided movies the table does not keep, per time bin."""
    plot.title(fit_title(f"Movies not kept in {table_label(health)} (%)", width))
    x, y = _finite(_scaled(health.bins, health), health.rejected_percent)
    if x:
        plot.bar(x, y, color="red", width=0.8)
        plot.ylim(0, 100)
        ticks = x[:: max(1, math.ceil(len(x) / 5))]  # bars are labelled by value: a few, rounded
        plot.xticks(ticks, [f"{t:.1f}" for t in ticks])
        plot.xlabel(start_label(health))


def draw_classes(plot: Plot, health: SessionHealth, width: int) -> None:
    """Members per class over the cycles of the current lineage, stacked."""
    pops = health.classes
    plot.title(fit_title("Class populations per cycle (stacked)", width))
    if not pops.cycles:
        return
    colors = [CLASS_COLORS[i % len(CLASS_COLORS)] for i in range(len(pops.labels))]
    labels = list(pops.labels) if width >= 100 else None
    # plotext takes ``labels`` and a colour per stack (textual-plotext's stub says otherwise)
    stacked_bar: Callable[..., None] = plot.stacked_bar
    stacked_bar(
        list(pops.cycles),
        [list(counts) for counts in pops.counts],
        labels=labels,
        color=colors,
        width=0.8,
    )
    _round_axis(plot, [float(sum(column)) for column in zip(*pops.counts, strict=True)])
    plot.xlabel("cycle")


PLOTS: tuple[tuple[str, Draw], ...] = (
    ("plot-rates", draw_rates),
    ("plot-resolution", draw_resolution),
    ("plot-defocus", draw_defocus),
    ("plot-rejected", draw_rejected),
    ("plot-classes", draw_classes),
)


def build_plot(draw: Draw, health: SessionHealth, width: int, height: int) -> Text:
    """The plot's text at ``width`` × ``height`` cells (blocking: a worker thread)."""
    with _BUILD_LOCK:
        plot = Plot()
        plot.plotsize(width, height)
        plot.theme("clear")
        draw(plot, health, width)
        return Text.from_ansi(plot.build())


class HealthPlot(Widget):
    """One plot of the Session tab, built off the event loop (see the module docstring)."""

    DEFAULT_CSS = """
    HealthPlot {
        height: 12;
        min-width: 30;
    }
    """

    def __init__(self, draw: Draw, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._draw = draw
        self._health: SessionHealth | None = None
        self._text: Text | None = None
        self._wanted: tuple[int, int, int] | None = None
        self._installed: tuple[int, int, int] | None = None
        self.built = 0
        """Plots built and shown so far (tests wait on it)."""

    @property
    def current(self) -> bool:
        """The plot shown is of the latest series, at the widget's size."""
        return self._wanted is not None and self._installed == self._wanted

    def show(self, health: SessionHealth) -> None:
        """Draw ``health`` (built in a worker)."""
        self._health = health
        self._rebuild()

    def clear(self) -> None:
        """Show nothing (another session, its series not scanned yet)."""
        self._health = None
        self._text = None
        self._wanted = None
        self._installed = None
        self.refresh()

    def on_resize(self) -> None:
        self._rebuild()

    def _rebuild(self) -> None:
        health = self._health
        width, height = self.size.width, self.size.height
        if health is None or width < 10 or height < 4:
            return
        wanted = (id(health), width, height)
        if wanted == self._wanted:
            return
        self._wanted = wanted

        def work() -> None:
            text = build_plot(self._draw, health, width, height)
            self.app.call_from_thread(self._install, wanted, text)

        self.run_worker(work, thread=True, exclusive=True, group=f"plot-{self.id}")

    def _install(self, wanted: tuple[int, int, int], text: Text) -> None:
        if wanted == self._wanted:
            self._text = text
            self._installed = wanted
            self.built += 1
            self.refresh()

    def render(self) -> RenderResult:
        return self._text if self._text is not None else Text("")


def _span(hours: float) -> str:
    if hours < 1 / 60:
        return "< 1 min"
    return f"{hours * 60:.0f} min" if hours < 1.0 else f"{hours:.1f} h"


def summary_line(health: SessionHealth | None) -> str:
    """The line of totals above the plots."""
    if health is None or health.start is None:
        return "No movies from Warp yet."
    kept = 100.0 * health.micrographs_kept / health.micrographs if health.micrographs else 0.0
    return (
        f"{health.micrographs:,} movies in {_span(health.span_hours)}, {kept:.0f} % kept · "
        f"{health.particles:,} particles"
    )


def alert_lines(alerts: Sequence[Alert]) -> Text:
    """One line per raised alert: its time and text, coloured by level."""
    text = Text()
    style = {AlertLevel.INFO: "", AlertLevel.WARNING: "bold yellow", AlertLevel.ERROR: "bold red"}
    for alert in alerts:
        when = alert.time[11:16] if len(alert.time) >= 16 else alert.time
        if text:
            text.append("\n")
        text.append(f"{when} ", style="dim")
        text.append(alert.text, style=style[alert.level])
    return text


class SessionHealthView(VerticalScroll):
    """The Session tab's content (see the module docstring)."""

    DEFAULT_CSS = """
    SessionHealthView {
        height: 1fr;
    }
    SessionHealthView #health-summary {
        height: auto;
        padding: 0 1;
    }
    SessionHealthView #health-alerts {
        height: auto;
        padding: 0 1;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    SessionHealthView #health-plots {
        grid-size: 1;
        grid-rows: 12;
        grid-gutter: 0 1;
        height: auto;
    }
    SessionHealthView.-wide #health-plots {
        grid-size: 2;
    }
    """

    def compose(self) -> ComposeResult:
        yield Static(summary_line(None), id="health-summary", markup=False)
        alerts = Static("", id="health-alerts")
        alerts.display = False
        yield alerts
        with Grid(id="health-plots"):
            for name, draw in PLOTS:
                yield HealthPlot(draw, id=name)

    def on_resize(self) -> None:
        self.set_class(self.size.width >= 100, "-wide")

    def show(self, health: SessionHealth) -> None:
        """New series: the totals line and every plot."""
        self.query_one("#health-summary", Static).update(summary_line(health))
        for plot in self.query(HealthPlot):
            plot.show(health)

    def clear(self) -> None:
        """Nothing to show yet (another session, before its first scan)."""
        self.query_one("#health-summary", Static).update(summary_line(None))
        for plot in self.query(HealthPlot):
            plot.clear()

    def show_alerts(self, alerts: Sequence[Alert]) -> None:
        """The alerts in force (none: the line is hidden)."""
        widget = self.query_one("#health-alerts", Static)
        widget.update(alert_lines(alerts))
        widget.display = bool(alerts)
