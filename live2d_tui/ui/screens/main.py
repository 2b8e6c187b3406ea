"""The main screen: session, job bar and settings on the left; Classes, Job Output and Session tabs
on the right. It owns its keys and actions, turns core events into widget updates (alerts into
notifications: in the app, and on the desktop when enabled), and decides which cycle the grid
shows.

Invariants:
- The screen never blocks the loop: cycles are read and laid out by :class:`CycleLoader`'s
  thread worker, the session log by :class:`JobOutput`'s; the Session tab's series come
  prepared from the supervisor's worker and its plots are built in thread workers.
- Settings typed in the form are staged; they reach the supervisor only with a Start.
- What the user looks at is not moved by new cycles unless they follow the latest
  (``shown_cycle is None``).

Where to extend it: a tab is a ``TabPane`` in :meth:`MainScreen.compose` (with a key in
:mod:`~live2d_tui.ui.keys`); a key is a row there and an ``action_…`` method here; a core event is a
handler registered in :meth:`MainScreen._register_handlers`; a command to the supervisor is a method
of :class:`~live2d_tui.ui.session.Session` sent with :meth:`MainScreen.run_command`; a dialog is a
screen in :mod:`.dialogs` pushed by an action, its result handled in a callback.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from functools import partial
from typing import ClassVar

from textual import work
from textual.app import ComposeResult, SystemCommand
from textual.binding import BindingType
from textual.containers import Vertical, VerticalScroll
from textual.css.query import NoMatches
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.widgets import Button, Footer, Header, Static, TabbedContent, TabPane

from live2d_tui.config import ConfigError, JobSettings
from live2d_tui.events import (
    AlertCleared,
    AlertLevel,
    AlertRaised,
    ClassQualityReady,
    CycleFinished,
    CycleProgress,
    CycleStarted,
    ErrorRaised,
    Event,
    HealthUpdated,
    JobFinished,
    LogLine,
    SessionChanged,
    SessionStatus,
    StreamState,
)
from live2d_tui.results.cycle_results import CycleResults
from live2d_tui.results.export import ExportRequest
from live2d_tui.supervisor import CycleRecord, SupervisorError, SupervisorSnapshot
from live2d_tui.ui import keys, text
from live2d_tui.ui.cycles import CycleLoader
from live2d_tui.ui.desktop import DesktopNotifier
from live2d_tui.ui.images import ImageChoice
from live2d_tui.ui.messages import EventHandlers
from live2d_tui.ui.screens.detail import ClassDetailScreen
from live2d_tui.ui.screens.dialogs import ConfirmScreen, CyclePicker, WarpFolderScreen
from live2d_tui.ui.screens.results import ExportChoice, ExportScreen, Rules, RulesScreen
from live2d_tui.ui.session import NoSessionOpen, Session
from live2d_tui.ui.widgets.class_grid import ClassGrid
from live2d_tui.ui.widgets.grid_page import GridData, GridPage
from live2d_tui.ui.widgets.job_bar import JobBar
from live2d_tui.ui.widgets.job_output import JobOutput
from live2d_tui.ui.widgets.session_health import SessionHealthView
from live2d_tui.ui.widgets.session_panel import SessionPanel
from live2d_tui.ui.widgets.settings_form import SettingsForm
from live2d_tui.ui.widgets.stream_panel import StreamPanel

LOCKED_STATUSES = frozenset({SessionStatus.RUNNING, SessionStatus.STOPPING, SessionStatus.WAITING})
"""The settings form is read-only in these states (the original allowed edits only when idle)."""

ALERT_NOTICE: dict[AlertLevel, tuple[str, SeverityLevel, float, int]] = {
    # level: (title, Textual severity, seconds shown, desktop urgency 0 low / 1 normal / 2 high)
    AlertLevel.INFO: ("Notice", "information", 10.0, 0),
    AlertLevel.WARNING: ("Alert", "warning", 30.0, 1),
    AlertLevel.ERROR: ("Alert", "error", 60.0, 2),
}
"""How an alert of each level is told: warnings and errors stay longer (the Session tab lists
the alerts in force for whoever comes back later)."""


class MainScreen(Screen[None]):
    """Left: session, job bar, settings. Right: Classes / Job Output / Session."""

    AUTO_FOCUS = "ClassGrid"
    """Arrow keys move over the classes from the start (Tab moves focus to the form)."""

    BINDINGS: ClassVar[list[BindingType]] = keys.MAIN_BINDINGS

    def __init__(
        self,
        session: Session,
        images: ImageChoice,
        settings: JobSettings,
        desktop: DesktopNotifier | None = None,
    ) -> None:
        """Args:
        session: The app's session (its snapshot and commands).
        images: The renderer chosen before the app started.
        settings: The form's settings until the session's own arrive.
        desktop: Sends alerts as desktop notifications (``None``: none are sent).
        """
        super().__init__()
        self.session = session
        self.desktop = desktop
        self._images = images
        self._settings = settings
        self.shown_cycle: int | None = None
        """The cycle on screen; None follows the latest."""
        self._loaded_settings: JobSettings | None = None
        self._cycles = CycleLoader(self, self._cycle_loaded, self._cycle_unreadable)
        self._quality_asked: set[int] = set()
        """Cycles whose half-set estimate this screen asked for."""
        self._handlers = EventHandlers(lambda event: self.refresh_snapshot())
        self._register_handlers()

    def compose(self) -> ComposeResult:
        yield Header(icon="◐")
        with VerticalScroll(id="left"):
            yield SessionPanel("", id="session")
            yield JobBar(id="job-bar")
            yield StreamPanel(id="stream")
            yield SettingsForm(self._settings, id="settings")
        with Vertical(id="right"), TabbedContent(id="tabs", initial="classes-tab"):
            with TabPane("Classes", id="classes-tab"):
                hint = Static(self._images.hint, markup=False, id="image-hint")
                hint.display = bool(self._images.hint)
                yield hint
                yield ClassGrid(self._images.mode, id="grid")
            with TabPane("Job Output", id="output-tab"):
                yield JobOutput(id="job-output")
            with TabPane("Session", id="session-tab"):
                yield SessionHealthView(id="health")
        yield Footer()

    # ------------------------------------------------------------------ core → view

    def _register_handlers(self) -> None:
        on = self._handlers.on
        on(CycleStarted, self._on_cycle_started)
        on(CycleProgress, lambda event: self.query_one(JobOutput).cycle_progress(event))
        on(CycleFinished, lambda event: self._cycles_changed())
        on(JobFinished, self._on_job_finished)
        on(LogLine, lambda event: self.query_one(JobOutput).poll_log())
        on(ErrorRaised, self._on_error)
        on(SessionChanged, lambda event: self.session_changed())
        on(ClassQualityReady, self._on_quality_ready)
        on(HealthUpdated, lambda event: self.query_one(SessionHealthView).show(event.health))
        on(AlertRaised, self._on_alert_raised)
        on(AlertCleared, self._on_alert_cleared)
        on(StreamState, self._on_stream_state)

    def show_event(self, event: Event) -> None:
        """Show a core event (the app hands each one here, in the order they came)."""
        if not self.is_attached:
            return  # shutting down: the widgets are going away
        try:
            self._handlers.dispatch(event)
        except NoMatches:
            return  # the app is closing and its widgets are already gone

    def _on_cycle_started(self, event: CycleStarted) -> None:
        self.query_one(JobOutput).cycle_started(event)
        self.refresh_snapshot()

    def _on_stream_state(self, event: StreamState) -> None:
        self.refresh_snapshot()  # the next update's trigger text changes with it
        self.query_one(StreamPanel).show_state(event)

    def _on_job_finished(self, event: JobFinished) -> None:
        self.query_one(JobOutput).job_ended()
        self.refresh_snapshot()

    def _on_error(self, event: ErrorRaised) -> None:
        self.notify(event.message, title="Error", severity="error", timeout=10)
        self.refresh_snapshot()

    def _on_alert_raised(self, event: AlertRaised) -> None:
        alert = event.alert
        title, severity, seconds, urgency = ALERT_NOTICE[alert.level]
        self.notify(alert.text, title=title, severity=severity, timeout=seconds)
        if self.desktop is not None:
            self.desktop.send(alert.text, urgency=urgency)
        self._show_alerts()

    def _on_alert_cleared(self, event: AlertCleared) -> None:
        if event.notify:
            self.notify(event.text, title="Alert ended", timeout=10)
            if self.desktop is not None:
                self.desktop.send(event.text, urgency=0)
        self._show_alerts()

    def _show_alerts(self) -> None:
        self.query_one(SessionHealthView).show_alerts(self.session.supervisor.alerts)

    def refresh_snapshot(self) -> SupervisorSnapshot | None:
        """Take a new snapshot and show it: panel, job bar, form, title, waiting message."""
        snap = self.session.refresh()
        if snap is None:
            return None
        try:
            panel = self.query_one(SessionPanel)
            job_bar = self.query_one(JobBar)
            form = self.query_one(SettingsForm)
        except NoMatches:
            return None  # the app is closing and its widgets are already gone
        panel.show(snap)
        job_bar.set_status(snap.status)
        self.query_one(StreamPanel).show_state(snap.stream)
        if snap.settings != self._loaded_settings:
            self._loaded_settings = snap.settings
            form.load(snap.settings)
        form.set_locked(snap.status in LOCKED_STATUSES)
        self.app.sub_title = f"{snap.session_name} · {snap.status.label}"
        if not snap.cycles:
            self._show_waiting(snap)
        return snap

    def session_changed(self) -> None:
        """Another session (or the first): forget its cycles, follow its log and latest cycle."""
        self._cycles.clear()
        self._quality_asked.clear()
        self.shown_cycle = None
        self._loaded_settings = None
        self.query_one(JobOutput).follow(self.session.supervisor.output_folder / "live2d.log")
        health = self.session.supervisor.health
        view = self.query_one(SessionHealthView)
        if health is None:
            view.clear()
        else:
            view.show(health)
        self._show_alerts()
        self._cycles_changed()  # refreshes the snapshot first

    def show_open_failed(self, exc: SupervisorError) -> None:
        """The session could not be opened: say why and what to do."""
        self.query_one(SessionPanel).show_message(text.open_failed_message(exc))

    def _show_waiting(self, snap: SupervisorSnapshot) -> None:
        threshold = (
            snap.ingest.next_threshold if snap.ingest else snap.settings.particle_count_initial
        )
        self.query_one(ClassGrid).show_message(
            text.waiting_message(snap.status, snap.ingest, threshold, snap.next_trigger)
        )

    # ------------------------------------------------------------------ which cycle is shown

    def _records(self) -> tuple[CycleRecord, ...]:
        snap = self.session.snapshot
        return snap.cycles if snap else ()

    def _cycles_changed(self) -> None:
        snap = self.refresh_snapshot()
        if snap is None or not snap.cycles:
            return
        if self.shown_cycle is None:
            self._show_cycle(snap.cycles[-1])
        else:
            record = self._record(self.shown_cycle)
            if record is not None:
                self.query_one(ClassGrid).set_header(self._header(record))

    def _record(self, number: int) -> CycleRecord | None:
        return next((c for c in self._records() if c.number == number), None)

    def _header(self, record: CycleRecord) -> str:
        newer = sum(1 for c in self._records() if c.number > record.number)
        return text.cycle_metadata(record, latest=self.shown_cycle is None, newer=newer)

    def _show_cycle(self, record: CycleRecord) -> None:
        grid = self.query_one(ClassGrid)
        cached = self._cycles.cached(record.number)
        if cached is not None:
            grid.set_data(cached, self._header(record))  # the grid builds the page in a worker
            return
        folder = self.session.supervisor.output_folder
        self._cycles.load(record, folder, grid.view(), self._records())

    def _cycle_loaded(self, record: CycleRecord, data: GridData, page: GridPage) -> None:
        wanted = self.shown_cycle
        if wanted is None or wanted == record.number:
            self.query_one(ClassGrid).set_data(data, self._header(record), page=page)
        results = data.results
        if data.members_known and (results is None or results.quality is None):
            self._ask_quality(record.number)

    # ------------------------------------------------------------------ figures and marks

    def _ask_quality(self, cycle: int) -> None:
        """Ask for a cycle's half-set estimate in the background, once per session (the newest
        cycle's is on its way after the cycle; an older one's is asked for when it is shown)."""
        if cycle not in self._quality_asked:
            self._quality_asked.add(cycle)
            self.session.request_quality(cycle)

    def _on_quality_ready(self, event: ClassQualityReady) -> None:
        if event.success:
            self.run_worker(self._reload_results(event.number), group="results")

    async def _reload_results(self, cycle: int) -> None:
        if self._cycles.cached(cycle) is None:
            return  # read with the cycle when it is shown
        results = await self._ask(partial(self.session.cycle_results, cycle))
        if results is not None:
            self._apply_results(results)

    def _apply_results(self, results: CycleResults) -> None:
        """Show a cycle's new figures or marks: the cached cycle, the grid, the class view."""
        cached = self._cycles.cached(results.cycle)
        if cached is not None:
            self._cycles.update(cached.with_results(results))
        self.query_one(ClassGrid).set_results(results.cycle, results)
        screen = self.app.screen
        if isinstance(screen, ClassDetailScreen):
            screen.set_results(results.cycle, results)

    async def _ask[T](self, call: Callable[[], Awaitable[T]]) -> T | None:
        """Await a :class:`Session` call; a refusal is shown and gives ``None``."""
        try:
            return await call()
        except NoSessionOpen as exc:
            self.notify(str(exc), severity="warning")
        except SupervisorError as exc:
            self.notify(str(exc), title="Not possible now", severity="warning", timeout=10)
        return None

    def _shown_classes(self) -> GridData | None:
        """The cycle in the grid, when its classes can be marked (else says why)."""
        data = self.query_one(ClassGrid).data
        if data is None:
            self.notify("No cycle is shown yet.", severity="warning")
            return None
        if not data.members_known:
            self.notify(
                "A random start's classes have no members: mark classes of a later cycle.",
                severity="warning",
            )
            return None
        return data

    def action_toggle_mark(self) -> None:
        """Mark the class under the cursor good → bad → unmarked."""
        grid = self.query_one(ClassGrid)
        data = self._shown_classes()
        if data is not None and grid.selected is not None:
            self.action_toggle_class(data.cycle, grid.selected + 1)

    def action_toggle_class(self, cycle: int, class_number: int) -> None:
        """Mark class ``class_number`` of ``cycle`` good → bad → unmarked (saved at once)."""
        self.run_worker(self._change(partial(self.session.toggle_mark, cycle, class_number)))

    async def _change(self, call: Callable[[], Awaitable[CycleResults]]) -> None:
        results = await self._ask(call)
        if results is not None:
            self._apply_results(results)

    def action_select_rules(self) -> None:
        """Open the rules dialog: minimum members, a half-set figure finer than X Å, or both."""
        data = self._shown_classes()
        if data is None:
            return
        cycle = data.cycle
        results = data.results
        figures = results.figures() if results is not None else None
        with_figures = sum(1 for f in (figures or {}).values() if f is not None)

        def chosen(rules: Rules | None) -> None:
            if rules is None:
                return
            call = partial(
                self.session.select_by_rules, cycle, rules.min_members, rules.better_than
            )
            self.run_worker(self._rules(cycle, call))

        self.app.push_screen(RulesScreen(data.stack.shape[0], with_figures), chosen)

    async def _rules(self, cycle: int, call: Callable[[], Awaitable[CycleResults]]) -> None:
        results = await self._ask(call)
        if results is not None:
            self._apply_results(results)
            selection = results.selection
            self.notify(
                f"Cycle {cycle}: {len(selection.good)} classes good, {len(selection.bad)} bad."
            )

    def action_export(self) -> None:
        """Open the export dialog for the classes marked good on the shown cycle."""
        data = self._shown_classes()
        if data is None:
            return
        good = data.results.selection.good if data.results is not None else []
        if not good:
            self.notify(
                "No class of this cycle is marked good: space marks the class under the "
                "cursor, R selects by rules.",
                severity="warning",
                timeout=8,
            )
            return
        cycle = data.cycle
        particles = sum(data.counts[k - 1] for k in good if k - 1 < len(data.counts))
        folder = str(self.session.supervisor.output_folder)

        def chosen(choice: ExportChoice | None) -> None:
            if choice is None:
                return
            request = ExportRequest(
                classes=tuple(good),
                format="cistem" if choice.format == "cistem" else "relion",
                alignment=choice.alignment,
                warp_stacks=choice.warp_stacks,
                stack=choice.stack,
            )
            self.run_worker(self._export(cycle, request))

        self.app.push_screen(ExportScreen(cycle, good, particles, folder), chosen)

    async def _export(self, cycle: int, request: ExportRequest) -> None:
        self.notify(f"Exporting cycle {cycle}'s classes {','.join(map(str, request.classes))}…")
        summary = await self._ask(partial(self.session.export, cycle, request))
        if summary is None:
            return
        for warning in summary.warnings:
            self.notify(warning, title="Export warning", severity="warning", timeout=15)
        self.notify(summary.line(), title="Exported", timeout=15)

    def action_report(self) -> None:
        """Write the shown cycle's report PNG into exports/."""
        data = self.query_one(ClassGrid).data
        if data is None:
            self.notify("No cycle is shown yet.", severity="warning")
            return
        self.run_worker(self._report(data.cycle))

    async def _report(self, cycle: int) -> None:
        path = await self._ask(partial(self.session.report, cycle))
        if path is not None:
            self.notify(f"Wrote {path}", title="Report", timeout=15)

    def _cycle_unreadable(self, message: str) -> None:
        self.query_one(ClassGrid).show_message(message)

    # ------------------------------------------------------------------ commands

    @work(group="command", exit_on_error=False)
    async def run_command(self, command: Callable[[], Awaitable[None]]) -> None:
        """Send a command to the supervisor (a :class:`Session` method); a refusal is shown."""
        try:
            await command()
        except NoSessionOpen as exc:
            self.notify(str(exc), severity="warning")
            return
        except SupervisorError as exc:
            self.notify(str(exc), title="Not possible now", severity="warning", timeout=8)
        self.refresh_snapshot()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        actions = {
            "start-now": self.action_start_now,
            "start-auto": self.action_start_auto,
            "stop": self.action_stop,
            "abort": self.action_abort,
        }
        if event.button.id in actions:
            actions[event.button.id]()

    def _staged(self) -> JobSettings | None:
        try:
            return self.query_one(SettingsForm).read()
        except ConfigError as exc:
            self.notify(str(exc), title="Invalid settings", severity="error", timeout=10)
            return None

    def action_start_now(self) -> None:
        """Start a job now with the staged settings."""
        settings = self._staged()
        if settings is not None:
            self.run_command(partial(self.session.start_job_now, settings))

    def action_start_auto(self) -> None:
        """Turn automatic jobs on with the staged settings."""
        settings = self._staged()
        if settings is not None:
            self.run_command(partial(self.session.start_automatic, settings))

    def action_stop(self) -> None:
        """Stop after the running cycle (or stop waiting for particles)."""
        self.run_command(self.session.stop)

    def action_abort(self) -> None:
        """Abort the running cycle now (asks first)."""
        snap = self.session.snapshot
        if snap is None or snap.status not in {SessionStatus.RUNNING, SessionStatus.STOPPING}:
            self.notify("No job is running.", severity="warning")
            return

        def done(yes: bool | None) -> None:
            if yes:
                self.run_command(self.session.abort)

        self.app.push_screen(ConfirmScreen("Abort the running cycle now?", "Abort"), done)

    def action_force_reimport(self) -> None:
        """Re-import every particle into a fresh stack."""
        self.run_command(self.session.force_reimport)

    # ------------------------------------------------------------------ history

    def action_cycle(self, delta: int) -> None:
        """Step to an older (-1) or newer (+1) cycle."""
        cycles = self._records()
        if not cycles:
            return
        numbers = [c.number for c in cycles]
        current = self.shown_cycle if self.shown_cycle is not None else numbers[-1]
        pos = numbers.index(current) if current in numbers else len(numbers) - 1
        pos = max(0, min(len(numbers) - 1, pos + delta))
        self.shown_cycle = None if pos == len(numbers) - 1 else numbers[pos]
        self._show_cycle(cycles[pos])

    def action_follow_latest(self) -> None:
        """Show the latest cycle and follow new ones."""
        self.shown_cycle = None
        if self._records():
            self._show_cycle(self._records()[-1])

    def action_pick_cycle(self) -> None:
        """Open the cycle picker."""
        cycles = self._records()
        if not cycles:
            self.notify("No cycles yet.")
            return
        choices = [(c.number, text.cycle_choice(c)) for c in reversed(cycles)]
        current = self.shown_cycle if self.shown_cycle is not None else cycles[-1].number

        def picked(number: int | None) -> None:
            if number is None:
                return
            record = self._record(number)
            if record is not None:
                self.shown_cycle = None if record is cycles[-1] else number
                self._show_cycle(record)

        self.app.push_screen(CyclePicker(choices, current), picked)

    def on_class_grid_opened(self, message: ClassGrid.Opened) -> None:
        grid = self.query_one(ClassGrid)
        data = grid.data
        record = self._record(data.cycle) if data else None
        if data is None or record is None:
            return

        def back(index: int | None) -> None:
            if index is not None and index in grid.order:
                grid.cursor = grid.order.index(index)
            grid.redraw_images()

        self.app.push_screen(
            ClassDetailScreen(
                data, record, grid.order, message.index, self._images.mode, below=self
            ),
            back,
        )

    # ------------------------------------------------------------------ view

    def action_tab(self, tab: str) -> None:
        """Switch the right-hand tab."""
        self.query_one(TabbedContent).active = tab
        if tab == "classes-tab":
            self.query_one(ClassGrid).focus()
        elif tab == "session-tab":
            self.query_one(SessionHealthView).focus()  # arrows and page keys scroll the plots

    def action_redraw(self) -> None:
        """Re-send every image (after a resize, a reattach, or on request)."""
        self.query_one(ClassGrid).redraw_images()
        self.app.refresh()

    def action_warp_folder(self) -> None:
        """Open the Warp folder dialog."""
        snap = self.session.snapshot
        current = str(snap.warp_folder) if snap else str(self.session.supervisor.output_folder)

        async def apply(value: str) -> str | None:
            try:
                opened = self.session.is_open
                await self.session.change_warp_folder(value)
            except SupervisorError as exc:
                return str(exc)
            if not opened:
                self.session_changed()
            return None

        self.app.push_screen(WarpFolderScreen(current, apply))

    def action_toggle_sort(self) -> None:
        """Sort the classes by number, member count or half-set resolution."""
        self.query_one(ClassGrid).action_toggle_sort()

    def system_commands(
        self, *, redraw: Callable[[], object], show_keys: Callable[[], object]
    ) -> Iterable[SystemCommand]:
        """The main screen's entries in the command palette (ctrl+p), with the app's ``redraw``
        (of the screen on top) and ``show_keys`` in their places."""
        commands: list[tuple[str, str, Callable[[], object]]] = [
            ("Start job now", "Start a job with the staged settings (g)", self.action_start_now),
            (
                "Start automatic jobs",
                "Wait for particles, then run jobs (a)",
                self.action_start_auto,
            ),
            ("Stop", "Stop after the running cycle (x)", self.action_stop),
            ("Abort", "Abort the running cycle now (X)", self.action_abort),
            ("Older cycle", "Show the previous cycle ([)", lambda: self.action_cycle(-1)),
            ("Newer cycle", "Show the next cycle (])", lambda: self.action_cycle(1)),
            ("Pick a cycle", "List every cycle (c)", self.action_pick_cycle),
            ("Follow latest", "Show new cycles as they finish (f)", self.action_follow_latest),
            ("Warp folder", "Open another Warp session (w)", self.action_warp_folder),
            (
                "Sort classes",
                "By class number, member count or resolution (o)",
                self.action_toggle_sort,
            ),
            ("Mark class", "Good → bad → unmarked (space)", self.action_toggle_mark),
            ("Select by rules", "Minimum members, resolution (R)", self.action_select_rules),
            ("Export particles", "The classes marked good (E)", self.action_export),
            ("Report image", "A PNG of the shown cycle into exports/ (P)", self.action_report),
            ("Redraw images", "Re-send the images (ctrl+l)", redraw),
            ("Force re-import", "Re-import every particle (new stack)", self.action_force_reimport),
            ("Keys", "Show every key (?)", show_keys),
        ]
        for title, help_text, callback in commands:
            yield SystemCommand(title, help_text, callback)
