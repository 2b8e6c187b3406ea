"""The streaming state under the job bar: shown while a streaming job runs, hidden otherwise.

Fed by the :class:`~live2d_tui.events.StreamState` events and by every snapshot (whose
``stream`` is ``None`` when no streaming job runs); the age of the newest particle is redrawn
every few seconds.
"""

from __future__ import annotations

import time

from rich.text import Text
from textual.widgets import Static

from live2d_tui.events import StreamState

AGE_REFRESH_SECONDS = 5.0


def _now() -> float:
    """The clock the age is measured with (the snapshot tests freeze it)."""
    return time.time()


def stream_text(state: StreamState, now: float) -> Text:
    """The panel's lines: what the classes shown hold, what waits, how old the newest particle
    is, where the revisiting pass is and the disk the kept sums take."""
    text = Text()
    text.append("Streaming", style="bold")
    text.append(f" · classes of cycle {state.cycle}\n")
    text.append(f"{state.particles:,} particles in {state.blocks:,} blocks\n")
    text.append(state.waiting_text() + "\n", style="bold green" if state.updating else "")
    age = state.age_text(now)
    if age:
        text.append(age[0].upper() + age[1:] + "\n")
    text.append(f"Revisit pass {state.pass_number}: {state.pass_done}/{state.blocks} blocks\n")
    text.append(
        f"Sums {state.dump_bytes / 1e9:.2f} of {state.dump_budget_bytes / 1e9:.0f} GB",
        style="dim",
    )
    if state.full_star_cycle >= 0:
        text.append(f" · full star of cycle {state.full_star_cycle}", style="dim")
    return text


class StreamPanel(Static):
    """Shows :func:`stream_text` of the running streaming job's latest state."""

    DEFAULT_CSS = """
    StreamPanel { height: auto; padding: 0 1; margin-top: 1; display: none; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self.state: StreamState | None = None

    def on_mount(self) -> None:
        self.set_interval(AGE_REFRESH_SECONDS, self._redraw)

    def show_state(self, state: StreamState | None) -> None:
        """Show ``state``; ``None`` (no streaming job) hides the panel."""
        self.state = state
        self.display = state is not None
        self._redraw()

    def _redraw(self) -> None:
        if self.state is not None:
            self.update(stream_text(self.state, _now()))
