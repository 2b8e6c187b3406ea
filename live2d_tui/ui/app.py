"""The Textual app: the lifecycle around the main screen.

The app starts the supervisor (headless core) beside itself on the same event loop and closes it
on quit, on SIGHUP/SIGTERM, or however the app ends; it freezes the start-up objects out of the
garbage collector; and it bridges core events into the UI: each event (a plain dataclass from
:mod:`live2d_tui.events`) becomes one :class:`~live2d_tui.ui.messages.CoreEvent`
(:meth:`Live2DApp._on_bus_event`, the one place core data becomes a Textual message), handed to
the main screen, which owns the keys, the actions and the event handlers (:mod:`.screens.main`).
The app itself keeps ``?`` (help for every screen), quitting, ctrl+q and the command palette's
frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any, ClassVar

from textual import events
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen

from live2d_tui.events import Event, JobFinished, SessionStatus
from live2d_tui.supervisor import Supervisor, SupervisorError
from live2d_tui.ui import keys
from live2d_tui.ui.images import ImageChoice
from live2d_tui.ui.messages import CoreEvent
from live2d_tui.ui.screens.detail import ClassDetailScreen
from live2d_tui.ui.screens.dialogs import HelpScreen, QuitScreen
from live2d_tui.ui.screens.main import MainScreen
from live2d_tui.ui.session import Session
from live2d_tui.ui.widgets.class_grid import ClassGrid

TERMINATING_SIGNALS = (signal.SIGHUP, signal.SIGTERM)
"""Signals that quit the app cleanly (see :meth:`Live2DApp._watch_signals`)."""

HANGUP_EXIT_SECONDS = 10.0
"""After a hangup and the core's close, the process ends at the latest this much later."""


def _output_to_devnull() -> None:
    """Point stdout and stderr (Textual draws on stderr) at /dev/null."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        for fd in (1, 2):
            with contextlib.suppress(OSError):
                os.dup2(devnull, fd)
    finally:
        os.close(devnull)


class Live2DApp(App[None]):
    """live2d: live 2D classification of a Warp session, in the terminal."""

    CSS_PATH = "app.tcss"
    TITLE = "live2d"
    BINDINGS: ClassVar[list[BindingType]] = [
        # the main screen's keys are its own (keys.MAIN_BINDINGS); this one quits from anywhere
        Binding("ctrl+q", "quit", "Quit", show=False, priority=True),
    ]

    def __init__(
        self, supervisor: Supervisor, *, images: ImageChoice, start_automatic: bool = False
    ) -> None:
        """Args:
        supervisor: The core (not started yet; the app starts and closes it).
        images: The renderer chosen by :func:`~live2d_tui.ui.images.prepare_images`.
        start_automatic: Turn automatic jobs on once the session is open (``live2d demo``).
        """
        super().__init__()
        self.session = Session(supervisor)
        self._start_automatic = start_automatic
        self.image_choice = images
        self.main_screen: MainScreen
        """The default screen (made by :meth:`get_default_screen`)."""
        self._unsubscribe: list[Callable[[], None]] = []
        self._quit_after_cycle = False
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
        self.main_screen = MainScreen(
            self.session, self.image_choice, self.session.supervisor.config.job
        )
        return self.main_screen

    async def on_ready(self) -> None:
        # Ready (not Mount): the main screen's widgets exist, so the form can take the settings
        self._watch_signals()
        self._unsubscribe.append(self.session.supervisor.bus.subscribe(self._on_bus_event))
        try:
            await self.session.open()
        except SupervisorError as exc:
            self.notify(str(exc), title="Cannot open the session", severity="error", timeout=15)
            self.main_screen.show_open_failed(exc)
            return
        self.main_screen.session_changed()
        # The objects of startup (Textual, Rich, numpy, the session: ~150,000) live as long as the
        # app. Left in the collector's oldest generation, every full collection walks them all on
        # the loop: 25-40 ms idle and up to 200 ms while a cycle loads the CPUs (measured in the
        # latency benchmark: the slowest key presses waited on exactly that). Frozen, a full
        # collection walks only what was made since.
        gc.collect()
        gc.freeze()
        if self._start_automatic:
            settings = self.session.supervisor.snapshot().settings
            self.main_screen.run_command(partial(self.session.start_automatic, settings))

    async def on_unmount(self) -> None:
        # however the app ends (q, ctrl+c, a test harness), the core closes and unlocks
        self._unwatch_signals()
        await self._close_session(abort=False)
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

    def on_core_event(self, message: CoreEvent) -> None:
        # In the app's queue, events wait while on_ready opens the session, so the main screen
        # sees none before it has shown the session once.
        if self.session.closing:
            return  # shutting down: the widgets are going away
        self.main_screen.show_event(message.event)
        if isinstance(message.event, JobFinished) and self._quit_after_cycle:
            self.run_worker(self._quit_now(abort=False), group="quit")

    async def _close_session(self, *, abort: bool) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []
        await self.session.close(abort=abort)

    # ------------------------------------------------------------------ every screen

    def redraw(self) -> None:
        """Re-send the images of the screen on top (after a reattach, or from the palette)."""
        screen = self.screen
        if isinstance(screen, (MainScreen, ClassDetailScreen)):
            screen.action_redraw()
        self.refresh()

    def on_app_focus(self, event: events.AppFocus) -> None:
        # a terminal regaining focus (e.g. tmux reattach) may have lost TGP/Sixel images
        self.redraw()

    def help_sections(self) -> list[tuple[str, list[tuple[str, str]]]]:
        """Every key, grouped by where it works: (heading, [(keys, what it does)]).

        Built from the bindings themselves, so the help cannot drift from them; the class
        grid's four moves are one row, and a key is listed once per screen.
        """
        main = keys.binding_rows([*MainScreen.BINDINGS, *self.BINDINGS])
        main += [
            ("ctrl+p", "Command palette: search every command"),
            ("tab, shift+tab", "Move between the classes, the settings and the buttons"),
        ]
        grid = [("arrows, h j k l", "Move between classes")]
        grid += keys.binding_rows(
            b for b in ClassGrid.BINDINGS if not keys.action_name(b).startswith("move")
        )
        grid.append(("mouse", "Click a class to select it, double click to open it"))
        detail = keys.binding_rows(ClassDetailScreen.OWN_BINDINGS)
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
        yield from self.main_screen.system_commands(redraw=self.redraw, show_keys=self.action_help)

    # ------------------------------------------------------------------ quit

    async def action_quit(self) -> None:
        """Quit; while a job runs, ask: stop after this cycle, abort now, or keep running."""
        snap = self.session.snapshot
        status = snap.status if snap and self.session.is_open else None
        if status not in {SessionStatus.RUNNING, SessionStatus.STOPPING}:
            await self._quit_now(abort=False)
            return

        def chosen(choice: str | None) -> None:
            if choice == "abort":
                self.run_worker(self._quit_now(abort=True), group="quit")
            elif choice == "stop":
                self._quit_after_cycle = True
                self.notify("Quitting when the running cycle finishes…", timeout=30)
                self.main_screen.run_command(self.session.stop)

        self.push_screen(QuitScreen(), chosen)

    async def _quit_now(self, *, abort: bool) -> None:
        self.session.closing = True
        await self._close_session(abort=abort)
        if self.ended_by_signal == signal.SIGHUP:
            self._exit_if_stuck()
        self.exit()
