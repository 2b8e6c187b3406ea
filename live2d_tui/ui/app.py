"""The Textual app: wires the supervisor (headless core) to the screens and widgets.

The supervisor runs beside the app on the same event loop: the app starts it in ``on_mount``
and closes it on quit. Core events (plain dataclasses from :mod:`live2d_tui.events`) become one
Textual message, :class:`CoreEvent`, in exactly one place (:meth:`Live2DApp._on_bus_event`).

Invariants:
- The app never blocks the loop: class stacks are read and montages built in thread workers;
  the session log is followed by a thread worker that reads only appended bytes.
- Settings typed in the form are staged; they reach the supervisor only with a Start.
- What the user looks at is not moved by new cycles unless they follow the latest
  (``shown_cycle is None``).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, ClassVar

from textual import events, work
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.css.query import NoMatches
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Button, TabbedContent
from textual.worker import get_current_worker

from live2d_tui.config import ConfigError
from live2d_tui.events import (
    CycleFinished,
    CycleProgress,
    CycleStarted,
    ErrorRaised,
    Event,
    JobFinished,
    LogLine,
    SessionChanged,
    SessionStatus,
)
from live2d_tui.supervisor import CycleRecord, Supervisor, SupervisorError, SupervisorSnapshot
from live2d_tui.ui import montage, text
from live2d_tui.ui.images import ImageChoice
from live2d_tui.ui.logtail import LogTail
from live2d_tui.ui.screens.detail import ClassDetailScreen
from live2d_tui.ui.screens.dialogs import (
    ConfirmScreen,
    CyclePicker,
    HelpScreen,
    QuitScreen,
    WarpFolderScreen,
)
from live2d_tui.ui.screens.main import MainScreen
from live2d_tui.ui.widgets.class_grid import ClassGrid
from live2d_tui.ui.widgets.grid_page import GridData, GridPage, GridView
from live2d_tui.ui.widgets.job_bar import JobBar
from live2d_tui.ui.widgets.job_output import JobOutput
from live2d_tui.ui.widgets.session_panel import SessionPanel
from live2d_tui.ui.widgets.settings_form import SettingsForm

LOG_POLL_SECONDS = 0.5
"""How often the session log is checked for appended lines (a stat; reads only new bytes)."""

CACHE_CYCLES = 4
"""Cycles kept decoded in memory, so stepping back and forth with [ ] is instant."""

TERMINATING_SIGNALS = (signal.SIGHUP, signal.SIGTERM)
"""Signals that quit the app cleanly (see :meth:`Live2DApp._watch_signals`)."""

HANGUP_EXIT_SECONDS = 10.0
"""After a hangup and the core's close, the process ends at the latest this much later."""

LOCKED_STATUSES = frozenset({SessionStatus.RUNNING, SessionStatus.STOPPING, SessionStatus.WAITING})
"""The settings form is read-only in these states (the original allowed edits only when idle)."""


_KEY_NAMES = {
    "left_square_bracket": "[",
    "right_square_bracket": "]",
    "question_mark": "?",
    "escape": "esc",
    "pagedown": "page down",
    "pageup": "page up",
    "left": "←",
    "right": "→",
}


def _action(binding: BindingType) -> str:
    return binding.action if isinstance(binding, Binding) else str(binding[1])


def _binding_rows(bindings: Iterable[BindingType]) -> list[tuple[str, str]]:
    """(keys, description) of ``bindings``, one row per action: ``q`` and ``ctrl+q`` for the
    same action are one row, keys spelled as a user types them."""
    rows: dict[str, tuple[list[str], str]] = {}
    for binding in bindings:
        if not isinstance(binding, Binding) or binding.action.startswith("dismiss"):
            continue
        keys = [_KEY_NAMES.get(k.strip(), k.strip()) for k in binding.key.split(",")]
        known, description = rows.get(binding.action, ([], binding.tooltip or binding.description))
        rows[binding.action] = ([*known, *(k for k in keys if k not in known)], description)
    return [
        (", ".join(keys), description or action) for action, (keys, description) in rows.items()
    ]


def _output_to_devnull() -> None:
    """Point stdout and stderr (Textual draws on stderr) at /dev/null."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        for fd in (1, 2):
            with contextlib.suppress(OSError):
                os.dup2(devnull, fd)
    finally:
        os.close(devnull)


class CoreEvent(Message):
    """A core event delivered to the app (the one place core data becomes a Textual message)."""

    def __init__(self, event: Event) -> None:
        super().__init__()
        self.event = event


class Live2DApp(App[None]):
    """live2d: live 2D classification of a Warp session, in the terminal."""

    CSS_PATH = "app.tcss"
    TITLE = "live2d"
    # fmt: off
    BINDINGS: ClassVar[list[BindingType]] = [
        # first: the footer lists keys in this order and cuts what does not fit, and these two
        # are the ones a newcomer needs (after the focused widget's own, e.g. ⏎ Open class)
        Binding("question_mark", "help", "Keys", id="help", tooltip="This list of keys"),
        Binding("q", "quit", "Quit", id="quit", tooltip="Quit (asks while a job runs)"),
        Binding(
            "g", "start_now", "Start now", id="job.start_now",
            tooltip="Start a job now with the settings on the left",
        ),
        Binding(
            "a", "start_auto", "Automatic", id="job.start_auto",
            tooltip="Automatic jobs: a new job whenever enough new particles",
        ),
        Binding(
            "x", "stop", "Stop", id="job.stop",
            tooltip="Stop after the running cycle (and stop automatic jobs)",
        ),
        Binding("X", "abort", "Abort", id="job.abort", tooltip="Abort the running cycle (asks)"),
        Binding(
            "left_square_bracket", "cycle(-1)", "Older cycle", id="cycle.prev",
            tooltip="Show the previous cycle",
        ),
        Binding(
            "right_square_bracket", "cycle(1)", "Newer cycle", id="cycle.next",
            tooltip="Show the next cycle",
        ),
        Binding("c", "pick_cycle", "Cycles", id="cycle.pick", tooltip="Pick a cycle from a list"),
        Binding(
            "f", "follow_latest", "Latest", id="cycle.latest",
            tooltip="Show the latest cycle and follow new ones",
        ),
        Binding(
            "w", "warp_folder", "Warp folder", id="session.warp",
            tooltip="Open another Warp folder",
        ),
        Binding("1", "tab('classes-tab')", "Classes", show=False, id="tab.classes",
                tooltip="Classes tab"),
        Binding("2", "tab('output-tab')", "Job Output", show=False, id="tab.output",
                tooltip="Job Output tab: the running cycle and the session log"),
        Binding("ctrl+l", "redraw", "Redraw", show=False, id="view.redraw",
                tooltip="Redraw the images (after a resize or a reattach)"),
        Binding("ctrl+q", "quit", "Quit", show=False, priority=True),
    ]
    # fmt: on

    def __init__(
        self, supervisor: Supervisor, *, images: ImageChoice, start_automatic: bool = False
    ) -> None:
        """Args:
        supervisor: The core (not started yet; the app starts and closes it).
        images: The renderer chosen by :func:`~live2d_tui.ui.images.prepare_images`.
        start_automatic: Turn automatic jobs on once the session is open (``live2d demo``).
        """
        super().__init__()
        self.supervisor = supervisor
        self._start_automatic = start_automatic
        self.image_choice = images
        self.shown_cycle: int | None = None
        """The cycle on screen; None follows the latest."""
        self.snapshot: SupervisorSnapshot | None = None
        self._cache: OrderedDict[int, GridData] = OrderedDict()
        self._unsubscribe: list[object] = []
        self._logtail: LogTail | None = None
        self._log_lock = threading.Lock()
        self._loaded_settings: object = None
        self._quit_after_cycle = False
        self._exit_requested = False
        self._started = False
        self._previous_handlers: dict[int, Any] = {}
        """Handlers of :data:`TERMINATING_SIGNALS` before the app's, restored when it ends."""
        self.ended_by_signal: int | None = None
        """The signal (SIGHUP, SIGTERM) that ended the app, or None."""
        self.exit_cleanups: list[Callable[[], None]] = []
        """Run before the process is ended after a hangup whose shutdown hung (see
        :meth:`_exit_if_stuck`); the caller's own cleanup would not run then."""

    # ------------------------------------------------------------------ lifecycle

    def get_default_screen(self) -> Screen[None]:
        """The main screen, built from the configured default settings until the core is up."""
        self._main = MainScreen(
            self.supervisor.config.job, self.image_choice.mode, self.image_choice.hint
        )
        return self._main

    async def on_ready(self) -> None:
        # Ready (not Mount): the main screen's widgets exist, so the form can take the settings
        self._watch_signals()
        self._unsubscribe.append(self.supervisor.bus.subscribe(self._on_bus_event))
        self.set_interval(LOG_POLL_SECONDS, self._poll_log)
        try:
            await self.supervisor.start()
            self._started = True
        except SupervisorError as exc:
            self.notify(str(exc), title="Cannot open the session", severity="error", timeout=15)
            self._main.query_one(SessionPanel).show_message(text.open_failed_message(exc))
            return
        self._session_changed()
        # The objects of startup (Textual, Rich, numpy, the session: ~150,000) live as long as the
        # app. Left in the collector's oldest generation, every full collection walks them all on
        # the loop: 25-40 ms idle and up to 200 ms while a cycle loads the CPUs (measured in the
        # latency benchmark: the slowest key presses waited on exactly that). Frozen, a full
        # collection walks only what was made since.
        gc.collect()
        gc.freeze()
        if self._start_automatic:
            self._command("start_automatic", self.supervisor.snapshot().settings)

    async def on_unmount(self) -> None:
        # however the app ends (q, ctrl+c, a test harness), the core closes and unlocks
        self._unwatch_signals()
        await self._close_supervisor(abort=False)
        gc.unfreeze()  # what on_ready froze may be collected again (several apps in one process)

    def _watch_signals(self) -> None:
        """SIGHUP (the terminal or tmux session went away) and SIGTERM quit like ``q`` does: the
        core closes (a running job stays recorded and continues at the next start) and
        :meth:`run` returns, so the caller cleans up (``live2d demo`` removes its folder).

        SIGHUP gets a plain signal handler, which Python runs before any other pending one: the
        kernel sends SIGCONT with a hangup, and Textual's SIGCONT handler would otherwise start
        drawing again on the dead terminal. The handler points the output at /dev/null first
        and keeps Textual from resuming; should Textual's shutdown still hang on the dead
        terminal, :meth:`_exit_if_stuck` ends the process once the core is closed.
        """
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers belong to the main thread (tests may run apps elsewhere)
        loop = asyncio.get_running_loop()

        def hangup(signum: int, frame: object) -> None:
            signal.signal(signal.SIGCONT, signal.SIG_DFL)
            _output_to_devnull()
            loop.call_soon_threadsafe(self._on_terminating_signal, signum)

        self._previous_handlers = {s: signal.getsignal(s) for s in TERMINATING_SIGNALS}
        signal.signal(signal.SIGHUP, hangup)
        loop.add_signal_handler(signal.SIGTERM, self._on_terminating_signal, signal.SIGTERM)

    def _unwatch_signals(self) -> None:
        if not self._previous_handlers:
            return
        asyncio.get_running_loop().remove_signal_handler(signal.SIGTERM)
        for signum, handler in self._previous_handlers.items():
            signal.signal(signum, handler)
        self._previous_handlers = {}

    def _on_terminating_signal(self, signum: int) -> None:
        if self.ended_by_signal is not None:
            return
        self.ended_by_signal = signum
        self.run_worker(self._quit_now(abort=False), group="quit")

    def _exit_if_stuck(self) -> None:
        """After a hangup, once the core is closed: end the process if it has not ended within
        :data:`HANGUP_EXIT_SECONDS` (the caller's :attr:`exit_cleanups` run first)."""
        assert self.ended_by_signal is not None
        code = 128 + self.ended_by_signal

        def watchdog() -> None:
            time.sleep(HANGUP_EXIT_SECONDS)
            for cleanup in self.exit_cleanups:
                with contextlib.suppress(Exception):
                    cleanup()
            os._exit(code)

        threading.Thread(target=watchdog, name="live2d-hangup-exit", daemon=True).start()

    def _on_bus_event(self, event: Event) -> None:
        # may run on the supervisor's loop or a worker thread: post_message is thread-safe
        self.post_message(CoreEvent(event))

    async def _close_supervisor(self, *, abort: bool) -> None:
        for unsubscribe in self._unsubscribe:
            if callable(unsubscribe):
                unsubscribe()
        self._unsubscribe = []
        if self._started:
            self._started = False
            await self.supervisor.close(abort_running=abort)

    # ------------------------------------------------------------------ core → view

    def on_core_event(self, message: CoreEvent) -> None:
        if not self._main.is_attached or self._exit_requested:
            return  # shutting down: the widgets are going away
        event = message.event
        try:
            output = self._main.query_one(JobOutput)
        except NoMatches:
            return  # the app is closing and its widgets are already gone
        if isinstance(event, CycleStarted):
            output.cycle_started(event)
        elif isinstance(event, CycleProgress):
            output.cycle_progress(event)
            return  # frequent: nothing else on screen depends on it
        elif isinstance(event, CycleFinished):
            self._cycles_changed()  # refreshes the snapshot itself
            return
        elif isinstance(event, JobFinished):
            output.job_ended()
            if self._quit_after_cycle:
                self.run_worker(self._quit_now(abort=False), group="quit")
        elif isinstance(event, LogLine):
            self._poll_log()
            return
        elif isinstance(event, ErrorRaised):
            self.notify(event.message, title="Error", severity="error", timeout=10)
        elif isinstance(event, SessionChanged):
            self._session_changed()
            return
        self._refresh_snapshot()

    def _refresh_snapshot(self) -> SupervisorSnapshot | None:
        if not self._started:
            return None
        snap = self.supervisor.snapshot()
        self.snapshot = snap
        try:
            panel = self._main.query_one(SessionPanel)
            job_bar = self._main.query_one(JobBar)
            form = self._main.query_one(SettingsForm)
        except NoMatches:
            return None  # the app is closing and its widgets are already gone
        panel.show(snap)
        job_bar.set_status(snap.status)
        if snap.settings != self._loaded_settings:
            self._loaded_settings = snap.settings
            form.load(snap.settings)
        form.set_locked(snap.status in LOCKED_STATUSES)
        self.sub_title = f"{snap.session_name} · {snap.status.label}"
        if not snap.cycles:
            self._show_waiting(snap)
        return snap

    def _session_changed(self) -> None:
        self._cache.clear()
        self.shown_cycle = None
        self._logtail = LogTail(self.supervisor.output_folder / "live2d.log")
        self._main.query_one(JobOutput).add_lines([], reset=True)
        self._loaded_settings = None
        self._poll_log()
        self._cycles_changed()  # refreshes the snapshot first

    def _show_waiting(self, snap: SupervisorSnapshot) -> None:
        threshold = (
            snap.ingest.next_threshold if snap.ingest else snap.settings.particle_count_initial
        )
        self._main.query_one(ClassGrid).show_message(
            text.waiting_message(snap.status, snap.ingest, threshold, snap.next_trigger)
        )

    def _cycles(self) -> tuple[CycleRecord, ...]:
        return self.snapshot.cycles if self.snapshot else ()

    def _cycles_changed(self) -> None:
        snap = self._refresh_snapshot()
        if snap is None or not snap.cycles:
            return
        if self.shown_cycle is None:
            self._show_cycle(snap.cycles[-1])
        else:
            record = self._record(self.shown_cycle)
            if record is not None:
                self._main.query_one(ClassGrid).set_header(self._header(record))

    def _record(self, number: int) -> CycleRecord | None:
        return next((c for c in self._cycles() if c.number == number), None)

    def _header(self, record: CycleRecord) -> str:
        cycles = self._cycles()
        newer = sum(1 for c in cycles if c.number > record.number)
        return text.cycle_metadata(record, latest=self.shown_cycle is None, newer=newer)

    def _show_cycle(self, record: CycleRecord) -> None:
        grid = self._main.query_one(ClassGrid)
        cached = self._cache.get(record.number)
        if cached is not None:
            self._cache.move_to_end(record.number)
            grid.set_data(cached, self._header(record))  # the grid builds the page in a worker
            return
        self._load_cycle(record, self.supervisor.output_folder, grid.view())

    @work(thread=True, exclusive=True, group="load-cycle", exit_on_error=False)
    def _load_cycle(self, record: CycleRecord, folder: Path, view: GridView) -> None:
        # read, scale, build the montage and encode it in this one worker; the loop only swaps
        # the finished page in (ClassGrid.set_data)
        path = folder / f"{record.name}.mrc"
        try:
            stack = montage.load_class_stack(path)
        except (OSError, ValueError) as exc:
            self.call_from_thread(
                self._main.query_one(ClassGrid).show_message, f"Cannot read {path}: {exc}"
            )
            return
        data = GridData.from_stack(
            record.number,
            stack,
            text.class_counts(record, stack.shape[0]),
            members_known=not text.is_seed(record),
        )
        if get_current_worker().is_cancelled:
            return
        page = view.page_for(data)
        if not get_current_worker().is_cancelled:
            self.call_from_thread(self._cycle_loaded, record, data, page)

    def _cycle_loaded(self, record: CycleRecord, data: GridData, page: GridPage) -> None:
        self._cache[record.number] = data
        while len(self._cache) > CACHE_CYCLES:
            self._cache.popitem(last=False)
        wanted = self.shown_cycle
        if wanted is None or wanted == record.number:
            self._main.query_one(ClassGrid).set_data(data, self._header(record), page=page)

    def _poll_log(self) -> None:
        if self._logtail is not None:
            self._read_log(self._logtail)

    @work(thread=True, group="log", exit_on_error=False)
    def _read_log(self, tail: LogTail) -> None:
        # Not exclusive: cancelling a reader after read_new advanced the offset lost those lines
        # (a burst of LogLine events did that). One reader at a time instead; a poll that finds
        # one running skips, and the next poll (LOG_POLL_SECONDS) reads what it missed.
        if not self._log_lock.acquire(blocking=False):
            return
        try:
            lines, reset = tail.read_new()
            if (lines or reset) and tail is self._logtail:
                self.call_from_thread(self._main.query_one(JobOutput).add_lines, lines, reset=reset)
        finally:
            self._log_lock.release()

    # ------------------------------------------------------------------ job actions

    def on_button_pressed(self, event: Button.Pressed) -> None:
        actions = {
            "start-now": self.action_start_now,
            "start-auto": self.action_start_auto,
            "stop": self.action_stop,
            "abort": self.action_abort,
        }
        if event.button.id in actions:
            actions[event.button.id]()

    def _staged(self) -> object:
        try:
            return self._main.query_one(SettingsForm).read()
        except ConfigError as exc:
            self.notify(str(exc), title="Invalid settings", severity="error", timeout=10)
            return None

    def action_start_now(self) -> None:
        """Start a job now with the staged settings."""
        settings = self._staged()
        if settings is not None:
            self._command("start_job_now", settings)

    def action_start_auto(self) -> None:
        """Turn automatic jobs on with the staged settings."""
        settings = self._staged()
        if settings is not None:
            self._command("start_automatic", settings)

    def action_stop(self) -> None:
        """Stop after the running cycle (or stop waiting for particles)."""
        self._command("stop")

    def action_abort(self) -> None:
        """Abort the running cycle now (asks first)."""
        if self.snapshot is None or self.snapshot.status not in {
            SessionStatus.RUNNING,
            SessionStatus.STOPPING,
        }:
            self.notify("No job is running.", severity="warning")
            return

        def done(yes: bool | None) -> None:
            if yes:
                self._command("abort")

        self.push_screen(ConfirmScreen("Abort the running cycle now?", "Abort"), done)

    def action_force_reimport(self) -> None:
        """Re-import every particle into a fresh stack."""
        self._command("force_reimport")

    @work(group="command", exit_on_error=False)
    async def _command(self, name: str, *args: object) -> None:
        if not self._started:
            self.notify("No session is open: press w to choose a Warp folder.", severity="warning")
            return
        try:
            await getattr(self.supervisor, name)(*args)
        except SupervisorError as exc:
            self.notify(str(exc), title="Not possible now", severity="warning", timeout=8)
        self._refresh_snapshot()

    # ------------------------------------------------------------------ history

    def action_cycle(self, delta: int) -> None:
        """Step to an older (-1) or newer (+1) cycle."""
        cycles = self._cycles()
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
        if self._cycles():
            self._show_cycle(self._cycles()[-1])

    def action_pick_cycle(self) -> None:
        """Open the cycle picker."""
        cycles = self._cycles()
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

        self.push_screen(CyclePicker(choices, current), picked)

    def on_class_grid_opened(self, message: ClassGrid.Opened) -> None:
        grid = self._main.query_one(ClassGrid)
        data = grid.data
        record = self._record(data.cycle) if data else None
        if data is None or record is None:
            return

        def back(index: int | None) -> None:
            if index is not None and index in grid.order:
                grid.cursor = grid.order.index(index)
            grid.redraw_images()

        self.push_screen(
            ClassDetailScreen(data, record, grid.order, message.index, self.image_choice.mode),
            back,
        )

    # ------------------------------------------------------------------ view

    def action_tab(self, tab: str) -> None:
        """Switch the right-hand tab."""
        self._main.query_one(TabbedContent).active = tab
        if tab == "classes-tab":
            self._main.query_one(ClassGrid).focus()

    def action_redraw(self) -> None:
        """Re-send every image (after a resize, a reattach, or on request)."""
        screen = self.screen
        if isinstance(screen, ClassDetailScreen):
            screen.action_redraw()
        elif isinstance(screen, MainScreen):
            self._main.query_one(ClassGrid).redraw_images()
        self.refresh()

    def on_app_focus(self, event: events.AppFocus) -> None:
        # a terminal regaining focus (e.g. tmux reattach) may have lost TGP/Sixel images
        self.action_redraw()

    def action_warp_folder(self) -> None:
        """Open the Warp folder dialog."""
        current = (
            str(self.supervisor.output_folder)
            if not self.snapshot
            else str(self.snapshot.warp_folder)
        )

        async def apply(value: str) -> str | None:
            try:
                if self._started:
                    await self.supervisor.change_warp_folder(value)
                else:
                    await self._open_first(value)
            except SupervisorError as exc:
                return str(exc)
            return None

        self.push_screen(WarpFolderScreen(current, apply))

    async def _open_first(self, value: str) -> None:
        from live2d_tui.paths import PathError, resolve_warp_folder

        try:
            warp = resolve_warp_folder(value, self.supervisor.config.server)
        except PathError as exc:
            raise SupervisorError(str(exc)) from None
        sup = Supervisor(self.supervisor.config, warp_folder=warp, bus=self.supervisor.bus)
        await sup.start()
        self.supervisor = sup
        self._started = True
        self._session_changed()

    def help_sections(self) -> list[tuple[str, list[tuple[str, str]]]]:
        """Every key, grouped by where it works: (heading, [(keys, what it does)]).

        Built from the bindings themselves, so the help cannot drift from them; the class
        grid's four moves are one row, and a key is listed once per screen.
        """
        main = _binding_rows(self.BINDINGS)
        main += [
            ("ctrl+p", "Command palette: search every command"),
            ("tab, shift+tab", "Move between the classes, the settings and the buttons"),
        ]
        grid = [("arrows, h j k l", "Move between classes")]
        grid += _binding_rows(b for b in ClassGrid.BINDINGS if not _action(b).startswith("move"))
        grid.append(("mouse", "Click a class to select it, double click to open it"))
        detail = _binding_rows(ClassDetailScreen.BINDINGS)
        dialogs = [
            ("esc", "Close the dialog (cancel, keep running)"),
            ("enter", "The highlighted button (letters in brackets choose)"),
        ]
        return [
            ("Main screen (everywhere unless a screen below says otherwise)", main),
            ("Class grid (Classes tab)", grid),
            ("One class (enter on a class)", detail),
            ("Dialogs", dialogs),
        ]

    def action_help(self) -> None:
        """Show every key."""
        notes = [
            f"Images: {self.image_choice.mode.value} ({self.image_choice.reason})",
        ]
        if self.image_choice.hint:
            notes.append(self.image_choice.hint)
        self.push_screen(HelpScreen(self.help_sections(), notes))

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
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
            ("Sort classes", "By class number or member count (o)", self._toggle_sort),
            ("Redraw images", "Re-send the images (ctrl+l)", self.action_redraw),
            ("Force re-import", "Re-import every particle (new stack)", self.action_force_reimport),
            ("Keys", "Show every key (?)", self.action_help),
        ]
        for title, help_text, callback in commands:
            yield SystemCommand(title, help_text, callback)

    def _toggle_sort(self) -> None:
        self._main.query_one(ClassGrid).action_toggle_sort()

    # ------------------------------------------------------------------ quit

    async def action_quit(self) -> None:
        """Quit; while a job runs, ask: stop after this cycle, abort now, or keep running."""
        status = self.snapshot.status if self.snapshot and self._started else None
        if status not in {SessionStatus.RUNNING, SessionStatus.STOPPING}:
            await self._quit_now(abort=False)
            return

        def chosen(choice: str | None) -> None:
            if choice == "abort":
                self.run_worker(self._quit_now(abort=True), group="quit")
            elif choice == "stop":
                self._quit_after_cycle = True
                self.notify("Quitting when the running cycle finishes…", timeout=30)
                self._command("stop")

        self.push_screen(QuitScreen(), chosen)

    async def _quit_now(self, *, abort: bool) -> None:
        self._exit_requested = True
        await self._close_supervisor(abort=abort)
        if self.ended_by_signal == signal.SIGHUP:
            self._exit_if_stuck()
        self.exit()
