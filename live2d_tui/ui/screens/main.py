"""The main screen's layout: session, job bar and settings on the left; Classes and Job Output
tabs on the right. Behaviour (supervisor calls, events) lives in the app; this module only
arranges widgets, so the app stays wiring.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Header, Static, TabbedContent, TabPane

from live2d_tui.config import ImageMode, JobSettings
from live2d_tui.ui.widgets.class_grid import ClassGrid
from live2d_tui.ui.widgets.job_bar import JobBar
from live2d_tui.ui.widgets.job_output import JobOutput
from live2d_tui.ui.widgets.session_panel import SessionPanel
from live2d_tui.ui.widgets.settings_form import SettingsForm


class MainScreen(Screen[None]):
    """Left: session, job bar, settings. Right: Classes / Job Output."""

    AUTO_FOCUS = "ClassGrid"
    """Arrow keys move over the classes from the start (Tab moves focus to the form)."""

    def __init__(self, settings: JobSettings, mode: ImageMode, hint: str) -> None:
        super().__init__()
        self._settings = settings
        self._mode = mode
        self._hint = hint

    def compose(self) -> ComposeResult:
        yield Header(icon="◐")
        with VerticalScroll(id="left"):
            yield SessionPanel("", id="session")
            yield JobBar(id="job-bar")
            yield SettingsForm(self._settings, id="settings")
        with Vertical(id="right"), TabbedContent(id="tabs", initial="classes-tab"):
            with TabPane("Classes", id="classes-tab"):
                hint = Static(self._hint, markup=False, id="image-hint")
                hint.display = bool(self._hint)
                yield hint
                yield ClassGrid(self._mode, id="grid")
            with TabPane("Job Output", id="output-tab"):
                yield JobOutput(id="job-output")
        yield Footer()
