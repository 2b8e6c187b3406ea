"""Job Output tab: the running cycle's progress and the last 1,000 lines of the session log.

The progress line reads "cycle x of y · stage · runs d/t done, r running, q queued · ETA"; the
bar shows the cycle's percent. ``ProgressBar(show_eta=False)``: the ETA comes from the core's
event (its own clock), so snapshots stay deterministic.
"""

from __future__ import annotations

import threading
from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Log, ProgressBar

from live2d_tui.events import CycleProgress, CycleStarted, job_position
from live2d_tui.ui.logtail import LogTail
from live2d_tui.ui.widgets.class_grid import TextRow

MAX_LINES = 1000
"""Lines kept in the view (the issue's "last 1,000 lines")."""

LOG_POLL_SECONDS = 0.5
"""How often the session log is checked for appended lines (a stat; reads only new bytes)."""


def format_eta(seconds: float | None) -> str:
    """``ETA 4m 05s`` / ``ETA 1h 02m``, or empty when unknown."""
    if seconds is None or seconds < 0:
        return ""
    s = round(seconds)
    if s >= 3600:
        return f"ETA {s // 3600}h {s % 3600 // 60:02d}m"
    return f"ETA {s // 60}m {s % 60:02d}s"


def progress_text(started: CycleStarted | None, progress: CycleProgress | None) -> str:
    """The line above the bar."""
    if started is None:
        return "No cycle running."
    parts = [
        f"Cycle {started.number} ({started.block_type.label}, "
        f"{job_position(started.index_in_job, started.cycles_in_job)})",
        f"{started.high_res_limit:.1f} Å",
        f"{started.particle_count:,} particles",
    ]
    if progress is not None and progress.number == started.number:
        parts.append(progress.stage.value)
        parts.append(progress.runs_text())
        eta = format_eta(progress.eta_seconds)
        if eta:
            parts.append(eta)
    return " · ".join(parts)


class JobOutput(Vertical):
    """Progress of the running cycle above the session log."""

    DEFAULT_CSS = """
    JobOutput #progress-line { height: 1; }
    JobOutput #progress-row { height: 1; }
    JobOutput #job-log { height: 1fr; border-top: solid $panel; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._started: CycleStarted | None = None
        self._progress: CycleProgress | None = None
        self._logtail: LogTail | None = None
        self._log_lock = threading.Lock()

    def compose(self) -> ComposeResult:
        line = TextRow(id="progress-line")
        line.set_text(Text(progress_text(None, None)))
        yield line
        with Horizontal(id="progress-row"):
            yield ProgressBar(total=100, show_eta=False, id="cycle-progress")
        yield Log(max_lines=MAX_LINES, auto_scroll=True, id="job-log")

    def on_mount(self) -> None:
        self.set_interval(LOG_POLL_SECONDS, self.poll_log)

    def follow(self, path: Path) -> None:
        """Show the log file ``path`` from now on (its last lines first)."""
        self._logtail = LogTail(path)
        self.add_lines([], reset=True)
        self.poll_log()

    def poll_log(self) -> None:
        """Read what was appended to the log (in a worker)."""
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
                self.app.call_from_thread(self.add_lines, lines, reset=reset)
        finally:
            self._log_lock.release()

    def cycle_started(self, event: CycleStarted) -> None:
        """A new cycle: reset the bar."""
        self._started = event
        self._progress = None
        self.query_one(ProgressBar).update(total=100, progress=0)
        self._update_line()

    def cycle_progress(self, event: CycleProgress) -> None:
        """Move the bar and the stage/ETA text."""
        self._progress = event
        self.query_one(ProgressBar).update(total=100, progress=max(0.0, min(100.0, event.percent)))
        self._update_line()

    def job_ended(self) -> None:
        """No cycle runs any more."""
        self._started = None
        self._progress = None
        self.query_one(ProgressBar).update(total=100, progress=0)
        self._update_line()

    def add_lines(self, lines: list[str], *, reset: bool = False) -> None:
        """Append log lines (clearing first when the file was re-read from its tail)."""
        log = self.query_one(Log)
        if reset:
            log.clear()
        if lines:
            log.write_lines(lines)

    def _update_line(self) -> None:
        # a TextRow repaints without a layout pass: progress events arrive often
        self.query_one("#progress-line", TextRow).set_text(
            Text(progress_text(self._started, self._progress))
        )
