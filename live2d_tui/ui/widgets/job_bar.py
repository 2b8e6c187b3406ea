"""The job bar: Start Job Now, Start Automatic Jobs, Stop, Abort — enabled only when they apply."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Grid
from textual.widgets import Button

from live2d_tui.events import SessionStatus

BUTTONS: tuple[tuple[str, str, str], ...] = (
    ("start-now", "Start Job Now (g)", "success"),
    ("start-auto", "Start Automatic (a)", "primary"),
    ("stop", "Stop (x)", "warning"),
    ("abort", "Abort (X)", "error"),
)
"""Button id, label (with its key) and variant."""


def enabled_buttons(status: SessionStatus) -> frozenset[str]:
    """Which buttons apply in ``status``.

    - Start Job Now: idle or waiting (a running job must stop first).
    - Start Automatic: only when nothing automatic runs (stopped or failed).
    - Stop: a job runs or automatic jobs are waiting (stop after this cycle).
    - Abort: a cycle is running or stopping (ends its program runs now).
    """
    return {
        SessionStatus.STOPPED: frozenset({"start-now", "start-auto"}),
        SessionStatus.FAILED: frozenset({"start-now", "start-auto"}),
        SessionStatus.WAITING: frozenset({"start-now", "stop"}),
        SessionStatus.RUNNING: frozenset({"stop", "abort"}),
        SessionStatus.STOPPING: frozenset({"abort"}),
    }[status]


class JobBar(Grid):
    """Four buttons; the app handles ``Button.Pressed`` by id."""

    DEFAULT_CSS = """
    JobBar { grid-size: 2; grid-gutter: 0 1; height: auto; padding: 0 1; }
    JobBar Button { width: 1fr; min-width: 10; }
    """

    def compose(self) -> ComposeResult:
        for button_id, label, variant in BUTTONS:
            yield Button(label, id=button_id, variant=variant, compact=True)  # type: ignore[arg-type]

    def set_status(self, status: SessionStatus) -> None:
        """Enable the buttons that apply."""
        enabled = enabled_buttons(status)
        for button_id, _, _ in BUTTONS:
            self.query_one(f"#{button_id}", Button).disabled = button_id not in enabled
